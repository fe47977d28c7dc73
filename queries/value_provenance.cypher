// Memory-value provenance: which source tokens' values carried a head's output (VISIT's IOI negative mover).
// A head's output is Σ_s a_s · value_s, each value already projected through the head's slice of W_O; a
// source's `carried` = a_s · ‖value_s‖ is the norm of its term, `share` its fraction of the terms' sum.
// `shared_top` counts the tokens in both the value's and the head's top k (PROMOTES, k ≤ 5). Values are found
// among the pass's states and followed forward to their head: matching backward into the head made LadybugDB
// scan every FLOWS_TO edge of the store (1 s and a full buffer pool on 1,024 passes, 25 ms this way).
// @param pass: str  the pass uid
// @param layer: int  the head's layer
// @param head: int  the head's index
// @param k: int = 5  top-k for shared_top, at most the PROMOTES edges written per node
MATCH (p:Pass)-[:HAS_STATE]->(v:HiddenState)-[f:FLOWS_TO]->(h:HiddenState)
WHERE p.uid = $pass AND v.kind = 'value' AND v.layer = $layer AND v.head = $head AND f.kind = 'value'
OPTIONAL MATCH (h)-[rh:PROMOTES]->(ht:Token)
WHERE rh.rank <= $k
WITH v, f.score AS attention, collect(ht.uid) AS head_top
OPTIONAL MATCH (v)-[rv:PROMOTES]->(t:Token)
WHERE rv.rank <= $k AND t.uid IN head_top
WITH v, attention, count(t) AS shared_top
WITH collect({position: v.position, source_token: v.source_token, attention: attention, norm: v.norm,
              top: v.top_tokens, target_rank: v.target_rank, shared_top: shared_top}) AS values,
     sum(attention * v.norm) AS total
UNWIND values AS r
RETURN r.position AS position, r.source_token AS source_token, r.attention AS attention, r.norm AS value_norm,
       r.attention * r.norm AS carried, r.attention * r.norm / total AS share, r.top AS value_top,
       r.target_rank AS value_target_rank, r.shared_top AS shared_top
ORDER BY carried DESC, position
