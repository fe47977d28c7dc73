// Pass diff: the same components in two passes (two prompts, or two models on one prompt), side by side.
// States are paired by (layer, kind, head, source position); key and value states pair only where both
// passes have that source position. `shared_top` counts the top-k tokens (PROMOTES, k ≤ 5) the two share
// by text, so passes of different models compare too. `d_target_prob` = b − a, each pass's own target.
// States are read last by primary key (see value-provenance).
// @param a: str  the first pass uid
// @param b: str  the second pass uid
// @param kind: str = ''  only states of this kind ('' = all)
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
// @param k: int = 5  top-k for shared_top, at most the PROMOTES edges written per node
MATCH (pa:Pass)-[:HAS_STATE]->(x:HiddenState)
WHERE pa.uid = $a
WITH x  // filter after the pass's states are read: else LadybugDB scans every pass's states (226 -> 16 ms)
WHERE ($kind = '' OR x.kind = $kind) AND coalesce(x.layer, 1000000) >= $first AND coalesce(x.layer, -1) <= $last
MATCH (pb:Pass)-[:HAS_STATE]->(y:HiddenState)
WHERE pb.uid = $b AND y.kind = x.kind AND coalesce(y.layer, -1) = coalesce(x.layer, -1)
  AND coalesce(y.head, -1) = coalesce(x.head, -1) AND (NOT x.kind IN ['key', 'value'] OR y.position = x.position)
OPTIONAL MATCH (x)-[rx:PROMOTES]->(tx:Token)
WHERE rx.rank <= $k
WITH x, y, collect(tx.text) AS top_x
OPTIONAL MATCH (y)-[ry:PROMOTES]->(ty:Token)
WHERE ry.rank <= $k AND ty.text IN top_x
WITH x.uid AS xu, y.uid AS yu, count(ty) AS shared_top
MATCH (x:HiddenState)
WHERE x.uid = xu
WITH x, yu, shared_top  // one look-up at a time: two in a row make LadybugDB join whole tables
MATCH (y:HiddenState)
WHERE y.uid = yu
RETURN x.layer AS layer, x.kind AS kind, x.head AS head, x.position AS position, x.norm AS norm_a,
       y.norm AS norm_b, x.target_prob AS target_prob_a, y.target_prob AS target_prob_b,
       y.target_prob - x.target_prob AS d_target_prob, x.target_rank AS target_rank_a,
       y.target_rank AS target_rank_b, x.top_tokens AS top_a, y.top_tokens AS top_b, shared_top
ORDER BY layer, kind, head, position
