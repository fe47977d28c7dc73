// Negative movers aggregated across passes by (layer, head): how often each head ranks the target in its bottom n.
// Same definition as heads-suppressing; `frac` divides by the passes searched, the means are over the
// suppressing passes only. Sorted by frac, then mean bottom rank.
// @param token: str = ''  only passes whose target is this token ('' = any target)
// @param n: int = 100  bottom-rank cutoff
// @param model: str = ''  only passes of this model ('' = all)
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($token = '' OR p.target = $token)
WITH count(p) AS total
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($token = '' OR p.target = $token)
MATCH (m:Model)
WHERE m.name = p.model
MATCH (p)-[:HAS_STATE]->(h:HiddenState)
WHERE h.kind = 'head' AND h.target_rank > m.vocab_size - $n
WITH total, h.layer AS layer, h.head AS head, count(*) AS passes,
     avg(m.vocab_size - h.target_rank + 1) AS mean_bottom_rank, avg(h.target_prob * m.vocab_size) AS mean_vs_uniform
RETURN layer, head, passes, passes * 1.0 / total AS frac, mean_bottom_rank, mean_vs_uniform
ORDER BY frac DESC, mean_bottom_rank, layer, head
