// Recurring neurons: neurons among the top N by |activation| of their layer in more than a fraction of passes.
// VISIT's "regularization neurons" recur across prompts with a high norm and a high entropy (a flat
// projection). `frac` = passes / passes searched; `norm`, `entropy` and `top_tokens` describe the neuron's
// output direction (read with a positive activation; `neg_entropy` with a negative one); `mean_coef` its mean
// coefficient over the passes where it made the top N.
// @param top: int = 100  the per-layer top N, by ACTIVATES rank (|coef|)
// @param min_frac: float = 0.5  keep neurons in the top N of more than this fraction of passes
// @param kind: str = 'mlp'  neuron kind: mlp or attn_o ('' = both)
// @param model: str = ''  only passes of this model ('' = all)
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model)
WITH count(p) AS total
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)-[a:ACTIVATES]->(n:Neuron)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND a.rank <= $top
  AND n.layer >= $first AND n.layer <= $last AND ($kind = '' OR n.kind = $kind)
WITH total, n.uid AS uid, count(*) AS passes, avg(a.rank) AS mean_rank, avg(a.coef) AS mean_coef
WHERE passes > $min_frac * total
MATCH (n:Neuron)
WHERE n.uid = uid
RETURN uid, n.layer AS layer, n.kind AS kind, n.idx AS idx, passes, passes * 1.0 / total AS frac,
       mean_rank, mean_coef, n.norm AS norm, n.entropy AS entropy, n.neg_entropy AS neg_entropy,
       n.top_tokens AS top_tokens
ORDER BY frac DESC, mean_rank, layer, idx
