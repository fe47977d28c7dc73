// Heads that promote each pass's own target (its prediction unless --target was given) into their top k.
// Exact for any k: every node stores the rank of its pass's target in its logit-lens projection.
// @param k: int = 10  rank cutoff
// @param model: str = ''  only passes of this model ('' = all)
// @param pass: str = ''  only this pass uid ('' = all)
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
MATCH (p)-[:HAS_STATE]->(h:HiddenState)
WHERE h.kind = 'head' AND h.target_rank <= $k
RETURN p.prompt AS prompt, p.target AS target, h.layer AS layer, h.head AS head, h.target_rank AS rank,
       h.target_prob AS prob
ORDER BY prompt, rank, layer, head
