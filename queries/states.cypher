// Given states of one pass by uid, with their annotations (a subgraph's nodes).
// @param pass: str  the pass uid
// @param uids: list  the states' uids
UNWIND $uids AS uid
MATCH (h:HiddenState)
WHERE h.uid = uid AND h.pass = $pass
RETURN h.uid AS uid, h.layer AS layer, h.kind AS kind, h.head AS head, h.position AS position,
       h.source_token AS source_token, h.norm AS norm, h.entropy AS entropy,
       h.top_tokens AS top_tokens, h.top_probs AS top_probs, h.target_rank AS target_rank,
       h.target_prob AS target_prob
ORDER BY uid
