// Heads that promote a token, aggregated across passes by (layer, head): how often, how strongly.
// A head promotes the token in a pass when its projection ranks it ≤ k (as heads-promoting). `passes` counts
// those passes, `frac` divides by the passes searched, `mean_rank`/`mean_prob` average over the promoting
// passes only. Sorted by frac, then mean rank.
// @param token: str  the token text, leading space included (e.g. ' Paris')
// @param k: int = 5  rank cutoff, at most the PROMOTES edges written per node (5 by default)
// @param model: str = ''  only passes of this model ('' = all)
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model)
WITH count(p) AS total
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)-[r:PROMOTES]->(t:Token)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND h.kind = 'head' AND r.rank <= $k
  AND t.text = $token
WITH total, h.layer AS layer, h.head AS head, count(*) AS passes, avg(r.rank) AS mean_rank, avg(r.prob) AS mean_prob
RETURN layer, head, passes, passes * 1.0 / total AS frac, mean_rank, mean_prob
ORDER BY frac DESC, mean_rank, layer, head
