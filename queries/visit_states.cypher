// The states of a VISIT reduced graph: one pass, a layer range, every head, the top-k keys and values per head.
// Every state of the range except key and value states, which are kept only when their attention score is
// among the k largest into their query (keys) or head (values); ties go to the earlier source position. That is
// the edge's FLOWS_TO rank ≤ k + 1: rank 1 into a query or head is its `read` or `query` edge (docs/SCHEMA.md).
// The final node is included when the range reaches the last layer. Two patterns joined by UNION ALL, the states
// other than keys and values and the kept keys and values, read 1.1-1.5x faster than one OPTIONAL MATCH of
// every state's edge. A trailing ORDER BY would sort only the last part (LadybugDB runs the parts in
// parallel, in either order): the rows are sorted by uid in Python instead (`@order`).
// @order uid
// @param pass: str  the pass uid
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
// @param k: int = 3  keys and values kept per head
MATCH (p:Pass)
WHERE p.uid = $pass AND p.complete = true
MATCH (m:Model)
WHERE m.name = p.model
MATCH (p)-[:HAS_STATE]->(s:HiddenState)
WHERE ((s.layer >= $first AND s.layer <= $last) OR (s.kind = 'final' AND $last >= m.n_layers - 1))
  AND NOT s.kind IN ['key', 'value']
RETURN s.uid AS uid, s.layer AS layer, s.kind AS kind, s.head AS head, s.position AS position,
       s.source_token AS source_token, s.norm AS norm, s.entropy AS entropy,
       s.top_tokens AS top_tokens, s.top_probs AS top_probs, s.target_rank AS target_rank,
       s.target_prob AS target_prob
UNION ALL
MATCH (p:Pass)-[:HAS_STATE]->(s:HiddenState)-[f:FLOWS_TO]->(:HiddenState)
WHERE p.uid = $pass AND p.complete = true AND s.layer >= $first AND s.layer <= $last
  AND s.kind IN ['key', 'value'] AND f.kind = s.kind AND f.rank <= $k + 1
RETURN s.uid AS uid, s.layer AS layer, s.kind AS kind, s.head AS head, s.position AS position,
       s.source_token AS source_token, s.norm AS norm, s.entropy AS entropy,
       s.top_tokens AS top_tokens, s.top_probs AS top_probs, s.target_rank AS target_rank,
       s.target_prob AS target_prob
