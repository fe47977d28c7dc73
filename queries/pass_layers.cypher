// The states of one pass in a layer range, with their annotations (a subgraph's nodes).
// The final node is included when the range reaches the last layer.
// @param pass: str  the pass uid (`lensgraph passes` lists them)
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
MATCH (p:Pass)
WHERE p.uid = $pass AND p.complete = true
MATCH (m:Model)
WHERE m.name = p.model
MATCH (p)-[:HAS_STATE]->(h:HiddenState)
WHERE ((h.layer >= $first AND h.layer <= $last) OR (h.kind = 'final' AND $last >= m.n_layers - 1))
RETURN h.uid AS uid, h.layer AS layer, h.kind AS kind, h.head AS head, h.position AS position,
       h.source_token AS source_token, h.norm AS norm, h.entropy AS entropy,
       h.top_tokens AS top_tokens, h.top_probs AS top_probs, h.target_rank AS target_rank,
       h.target_prob AS target_prob
ORDER BY uid
