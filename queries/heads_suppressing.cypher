// Heads that suppress a pass's target (negative movers): the target ranks in the bottom n of the head's projection.
// The head's projection is its output through its slice of W_O, read by the logit lens over the whole
// vocabulary; `bottom_rank` = vocab_size − target_rank + 1 (1 = the least likely token of all), and
// `vs_uniform` = target_prob × vocab_size (1 = uniform; a negative mover's is far below 1). The target is
// each pass's own (its --target, else the model's prediction), whose exact rank every node stores.
// @param token: str = ''  only passes whose target is this token ('' = any target)
// @param n: int = 100  bottom-rank cutoff
// @param model: str = ''  only passes of this model ('' = all)
// @param pass: str = ''  only this pass uid ('' = all)
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
  AND ($token = '' OR p.target = $token)
MATCH (m:Model)
WHERE m.name = p.model
MATCH (p)-[:HAS_STATE]->(h:HiddenState)
WHERE h.kind = 'head' AND h.target_rank > m.vocab_size - $n
RETURN p.uid AS pass, p.prompt AS prompt, p.target AS target, h.layer AS layer, h.head AS head,
       m.vocab_size - h.target_rank + 1 AS bottom_rank, h.target_prob AS target_prob,
       h.target_prob * m.vocab_size AS vs_uniform
ORDER BY pass, layer, head
