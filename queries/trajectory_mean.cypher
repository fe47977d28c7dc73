// Logit-lens trajectory averaged over passes: per layer, the mean rank and probability of target and prediction.
// `target_top1` / `pred_top1` are the fractions of passes where the token already ranks first at that layer.
// Ranks are averaged as they are (a few very large ranks dominate `mean_target_rank`; the fractions do not).
// @param model: str = ''  only passes of this model ('' = all)
// @param kind: str = 'resid_post'  the residual state read: resid_pre, resid_mid or resid_post
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model)
MATCH (p)-[:HAS_STATE]->(h:HiddenState)
WHERE h.kind = $kind
RETURN h.layer AS layer, count(*) AS passes, avg(h.target_rank) AS mean_target_rank,
       avg(h.target_prob) AS mean_target_prob, avg(CASE WHEN h.target_rank = 1 THEN 1.0 ELSE 0.0 END) AS target_top1,
       avg(h.pred_rank) AS mean_pred_rank, avg(h.pred_prob) AS mean_pred_prob,
       avg(CASE WHEN h.pred_rank = 1 THEN 1.0 ELSE 0.0 END) AS pred_top1
ORDER BY layer
