// Heads that promote a token, aggregated across passes by (layer, head): how often, how strongly.
// A head promotes the token in a pass when its projection ranks it ≤ k (as heads-promoting). `passes` counts
// those passes, `frac` divides by the passes searched, `mean_rank`/`mean_prob` average over the promoting
// passes only. Sorted by frac, then mean rank. Head states are scanned with their kind filter and their passes
// looked up by key afterwards: starting from the passes' HAS_STATE lists made LadybugDB read the PROMOTES
// edges of every state in the store (2.2x slower on 1,024 passes). Heads are counted before passes, as in
// recurring-neurons.
// @param token: str  the token text, leading space included (e.g. ' Paris')
// @param k: int = 5  rank cutoff, at most the PROMOTES edges written per node (5 by default)
// @param model: str = ''  only passes of this model ('' = all)
MATCH (h:HiddenState)-[r:PROMOTES]->(t:Token)
WHERE h.kind = 'head' AND r.rank <= $k AND t.text = $token
WITH h.pass AS pass, h.layer AS layer, h.head AS head, r.rank AS rank, r.prob AS prob
MATCH (p:Pass)
WHERE p.uid = pass AND p.complete = true AND ($model = '' OR p.model = $model)
WITH layer, head, count(*) AS passes, avg(rank) AS mean_rank, avg(prob) AS mean_prob
WITH collect({layer: layer, head: head, passes: passes, mean_rank: mean_rank, mean_prob: mean_prob}) AS found
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model)
WITH found, count(p) AS total
UNWIND found AS f
RETURN f.layer AS layer, f.head AS head, f.passes AS passes, f.passes * 1.0 / total AS frac,
       f.mean_rank AS mean_rank, f.mean_prob AS mean_prob
ORDER BY frac DESC, mean_rank, layer, head
