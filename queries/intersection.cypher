// Intersection score (Dar et al.): |top-k(a) ∩ top-k(b)| / k between paired components, per layer, over passes.
// States of kind a and kind b are paired within a pass and layer, and within a head when both are per-head
// (value vs its head, head vs attn_out, ...). Top-k tokens are a state's PROMOTES edges, so k ≤ 5 (the
// PROMOTES edges written per node). `score` averages over the pairs of all passes; `passes` counts passes.
// The pass filter is repeated on q (= p) so that LadybugDB reads the states of the chosen passes only.
// @param a: str = 'value'  the first state kind
// @param b: str = 'head'  the second state kind
// @param k: int = 5  top-k, at most the PROMOTES edges written per node
// @param model: str = ''  only passes of this model ('' = all)
// @param pass: str = ''  only this pass uid ('' = all)
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
MATCH (p)-[:HAS_STATE]->(y:HiddenState)
WHERE y.kind = $b
OPTIONAL MATCH (y)-[ry:PROMOTES]->(ty:Token)
WHERE ry.rank <= $k
WITH p, y, collect(ty.uid) AS top_y
MATCH (q:Pass)-[:HAS_STATE]->(x:HiddenState)
WHERE q = p AND q.complete = true AND ($model = '' OR q.model = $model) AND ($pass = '' OR q.uid = $pass)
  AND x.kind = $a AND x.layer = y.layer AND (x.head IS NULL OR y.head IS NULL OR x.head = y.head)
OPTIONAL MATCH (x)-[rx:PROMOTES]->(t:Token)
WHERE rx.rank <= $k
WITH p, x, y, sum(CASE WHEN t.uid IN top_y THEN 1 ELSE 0 END) AS shared
RETURN x.layer AS layer, avg(shared * 1.0 / $k) AS score, count(*) AS pairs, count(DISTINCT p.uid) AS passes
ORDER BY layer
