// The FLOWS_TO edges among a set of states of one pass (a subgraph's edges).
// @param pass: str  the pass uid
// @param uids: list  the states' uids
MATCH (p:Pass)-[:HAS_STATE]->(a:HiddenState)-[r:FLOWS_TO]->(b:HiddenState)
WHERE p.uid = $pass AND a.uid IN $uids AND b.uid IN $uids
RETURN a.uid AS source, b.uid AS target, r.kind AS kind, r.score AS score, r.rank AS rank
ORDER BY source, target
