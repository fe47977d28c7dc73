// Heads that promote a token: the heads whose logit-lens projection ranks it in their top k.
// One row per (pass, head); the head's projection is its output through its slice of W_O.
// @param token: str  the token text, leading space included (e.g. ' Paris')
// @param k: int = 5  rank cutoff, at most the PROMOTES edges written per node (5 by default)
// @param model: str = ''  only passes of this model ('' = all)
// @param pass: str = ''  only this pass uid ('' = all)
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)-[r:PROMOTES]->(t:Token)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
  AND h.kind = 'head' AND r.rank <= $k AND t.text = $token
RETURN p.uid AS pass, p.prompt AS prompt, h.layer AS layer, h.head AS head, r.rank AS rank, r.prob AS prob
ORDER BY pass, layer, head
