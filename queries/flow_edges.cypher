// The FLOWS_TO edges of one pass whose score is at least tau (the raw material of information-flow routes).
// Scores: the LM Transparency Tool's contribution share on `sum` and `residual` edges, attention on `value`
// and `key` edges, 1 on structural edges (norm, read, query, layer). The flow-routes wrapper
// (queries/routes.py) keeps the ones on a path back from the final node.
// @param pass: str  the pass uid
// @param tau: float = 0.04  the score threshold
// @param keys: bool = false  also keep key → query edges (they steer attention, they carry no content)
MATCH (p:Pass)-[:HAS_STATE]->(a:HiddenState)-[r:FLOWS_TO]->(b:HiddenState)
WHERE p.uid = $pass AND r.score >= $tau AND (r.kind <> 'key' OR $keys)
RETURN a.uid AS source, b.uid AS target, r.kind AS kind, r.score AS score, r.rank AS rank
ORDER BY source, target
