// The FLOWS_TO edges among the states of one pass in a layer range (a subgraph's edges).
// Both ends lie in layers first..last; an edge into the final node counts as its source's layer. It takes a
// range, not a list of uids: `b.uid IN $uids` with thousands of uids is a list scan per edge in LadybugDB.
// @param pass: str  the pass uid
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
MATCH (p:Pass)-[:HAS_STATE]->(a:HiddenState)-[r:FLOWS_TO]->(b:HiddenState)
WHERE p.uid = $pass AND a.layer >= $first AND a.layer <= $last
  AND coalesce(b.layer, a.layer) >= $first AND coalesce(b.layer, a.layer) <= $last
RETURN a.uid AS source, b.uid AS target, r.kind AS kind, r.score AS score, r.rank AS rank
ORDER BY source, target
