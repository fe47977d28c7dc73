// Memory-value provenance: which source tokens' values carried a head's output (VISIT's IOI negative mover).
// A head's output is Σ_s a_s · value_s, each value already projected through the head's slice of W_O; a
// source's `carried` = a_s · ‖value_s‖ is the norm of its term, `share` its fraction of the terms' sum.
// `shared_top` counts the tokens in both the value's and the head's top k (PROMOTES, k ≤ 5). Values are read
// last, by primary key: LadybugDB reads properties of nodes carried through joins at the whole table's cost.
// @param pass: str  the pass uid
// @param layer: int  the head's layer
// @param head: int  the head's index
// @param k: int = 5  top-k for shared_top, at most the PROMOTES edges written per node
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)
WHERE p.uid = $pass AND h.kind = 'head' AND h.layer = $layer AND h.head = $head
MATCH (w:HiddenState)-[g:FLOWS_TO]->(h)
WHERE g.kind = 'value'
WITH h, sum(g.score * w.norm) AS total
OPTIONAL MATCH (h)-[rh:PROMOTES]->(ht:Token)
WHERE rh.rank <= $k
WITH h, total, collect(ht.uid) AS head_top
MATCH (s:HiddenState)-[f:FLOWS_TO]->(h)
WHERE f.kind = 'value'
OPTIONAL MATCH (s)-[rv:PROMOTES]->(t:Token)
WHERE rv.rank <= $k AND t.uid IN head_top
WITH s.uid AS uid, f.score AS attention, total, count(t) AS shared_top
MATCH (v:HiddenState)
WHERE v.uid = uid
RETURN v.position AS position, v.source_token AS source_token, attention, v.norm AS value_norm,
       attention * v.norm AS carried, attention * v.norm / total AS share, v.top_tokens AS value_top,
       v.target_rank AS value_target_rank, shared_top
ORDER BY carried DESC, position
