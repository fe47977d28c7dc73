// Recurring neurons: neurons among the top N by |activation| of their layer in more than a fraction of passes.
// VISIT's "regularization neurons" recur across prompts with a high norm and a high entropy (a flat
// projection). `frac` = passes / passes searched; `norm`, `entropy` and `top_tokens` describe the neuron's
// output direction (read with a positive activation; `neg_entropy` with a negative one); `mean_coef` its mean
// coefficient over the passes where it made the top N. Neurons are counted before passes: counting passes
// first makes LadybugDB hold every matching edge for the join, on one thread (2.2x slower on 1,024 passes).
// @param top: int = 100  the per-layer top N, by ACTIVATES rank (|coef|)
// @param min_frac: float = 0.5  keep neurons in the top N of more than this fraction of passes
// @param kind: str = 'mlp'  neuron kind: mlp or attn_o ('' = both)
// @param model: str = ''  only passes of this model ('' = all)
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)-[a:ACTIVATES]->(n:Neuron)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND a.rank <= $top
  AND n.layer >= $first AND n.layer <= $last AND ($kind = '' OR n.kind = $kind)
WITH n.uid AS uid, count(*) AS passes, avg(a.rank) AS mean_rank, avg(a.coef) AS mean_coef
WITH collect({uid: uid, passes: passes, mean_rank: mean_rank, mean_coef: mean_coef}) AS found
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model)
WITH found, count(p) AS total
UNWIND found AS f
WITH total, f
WHERE f.passes > $min_frac * total
MATCH (n:Neuron)
WHERE n.uid = f.uid
RETURN n.uid AS uid, n.layer AS layer, n.kind AS kind, n.idx AS idx, f.passes AS passes,
       f.passes * 1.0 / total AS frac, f.mean_rank AS mean_rank, f.mean_coef AS mean_coef, n.norm AS norm,
       n.entropy AS entropy, n.neg_entropy AS neg_entropy, n.top_tokens AS top_tokens
ORDER BY frac DESC, mean_rank, layer, idx
