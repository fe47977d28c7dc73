// The edges of a VISIT reduced graph: the FLOWS_TO edges among the states visit-states keeps (same parameters).
// Key and value states have one edge each, into their query or head, and are kept by its rank; so an edge is
// kept when both ends lie in layers first..last (an edge into the final node counts as its source's layer) and
// it is not a key or value edge ranked below the top k + 1 (rank 1 is the `read` or `query` edge).
// @param pass: str  the pass uid
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
// @param k: int = 3  keys and values kept per head
MATCH (p:Pass)-[:HAS_STATE]->(a:HiddenState)-[r:FLOWS_TO]->(b:HiddenState)
WHERE p.uid = $pass AND a.layer >= $first AND a.layer <= $last
  AND coalesce(b.layer, a.layer) >= $first AND coalesce(b.layer, a.layer) <= $last
  AND (NOT r.kind IN ['key', 'value'] OR r.rank <= $k + 1)
RETURN a.uid AS source, b.uid AS target, r.kind AS kind, r.score AS score, r.rank AS rank
ORDER BY source, target
