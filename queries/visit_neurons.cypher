// The neurons of a VISIT reduced graph: per layer, the strongest W_O and MLP neurons of one pass by |coefficient|.
// A neuron is kept when its ACTIVATES rank (by |coef| within its layer and kind) is ≤ k_attn (W_O) or ≤ k_mlp
// (MLP). `sign` is +1 for a positive coefficient ("top") and −1 for a negative one ("bottom"), and
// `top_tokens` is what the neuron writes with that sign (its neg_top_tokens when negative). `source` is the
// concat (W_O) or ln2 (MLP) state it reads from.
// @param pass: str  the pass uid
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
// @param k_attn: int = 5  W_O neurons kept per layer
// @param k_mlp: int = 10  MLP neurons kept per layer
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)-[a:ACTIVATES]->(n:Neuron)
WHERE p.uid = $pass AND h.layer >= $first AND h.layer <= $last
  AND a.rank <= CASE WHEN h.kind = 'concat' THEN $k_attn ELSE $k_mlp END
RETURN n.uid AS uid, n.layer AS layer, n.kind AS kind, n.idx AS idx, h.uid AS source, a.coef AS coef,
       a.rank AS rank, CASE WHEN a.coef < 0 THEN -1 ELSE 1 END AS sign, n.norm AS norm,
       CASE WHEN a.coef < 0 THEN n.neg_entropy ELSE n.entropy END AS entropy,
       CASE WHEN a.coef < 0 THEN n.neg_top_tokens ELSE n.top_tokens END AS top_tokens,
       CASE WHEN a.coef < 0 THEN n.neg_top_probs ELSE n.top_probs END AS top_probs
ORDER BY layer, kind, rank
