// Logit-lens trajectory: the rank and probability of the target and of the prediction in every layer's residual.
// One row per pass and layer, read from the residual state of the given kind (resid_post by default: the
// block's output; the last layer's resid_post is the model's own output, so its pred_rank is 1). One MATCH from
// the pass: LadybugDB then reads one pass's states (on 1,024 passes: 4 ms for one pass instead of 0.9 s; all
// passes take 2 s instead of 1).
// @param pass: str = ''  only this pass uid ('' = all)
// @param model: str = ''  only passes of this model ('' = all)
// @param kind: str = 'resid_post'  the residual state read: resid_pre, resid_mid or resid_post
MATCH (p:Pass)-[:HAS_STATE]->(h:HiddenState)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
  AND h.kind = $kind
OPTIONAL MATCH (h)-[r:PROMOTES]->(t:Token)
WHERE r.rank = 1
RETURN p.uid AS pass, p.target AS target, p.prediction AS prediction, h.layer AS layer,
       h.target_rank AS target_rank, h.target_prob AS target_prob, h.pred_rank AS pred_rank,
       h.pred_prob AS pred_prob, t.text AS top_token
ORDER BY pass, layer
