// Layer-norm filter (VISIT 5.2): what each ln1/ln2 does to the logit lens of its input residual.
// Defined on what every node stores (its top-10 tokens and the target's and prediction's exact rank and
// probability): `raised` are tokens in the norm's top 10 but not its input's (the norm lifted them in),
// `lowered` the input's top 10 the norm dropped; `target_gain` / `pred_gain` = probability after ÷ before
// (null where a stored probability underflowed to 0; such rows sort last).
// The input is resid_pre for ln1 and resid_mid for ln2. Sorted by |log target_gain|, largest first. (Found by a
// scan, then read by primary key: see value-provenance.)
// @param pass: str = ''  only this pass uid ('' = all)
// @param model: str = ''  only passes of this model ('' = all)
// @param first: int = 0  first layer
// @param last: int = 1000000  last layer
MATCH (p:Pass)
WHERE p.complete = true AND ($model = '' OR p.model = $model) AND ($pass = '' OR p.uid = $pass)
MATCH (p)-[:HAS_STATE]->(si:HiddenState)-[f:FLOWS_TO]->(so:HiddenState)
WHERE f.kind = 'norm' AND so.kind IN ['ln1', 'ln2'] AND so.layer >= $first AND so.layer <= $last
WITH p, si.uid AS iu, so.uid AS ou
MATCH (i:HiddenState)
WHERE i.uid = iu
WITH p, i, ou  // one look-up at a time: two in a row make LadybugDB join whole tables
MATCH (o:HiddenState)
WHERE o.uid = ou
UNWIND o.top_tokens AS up
WITH p, i, o, collect(CASE WHEN NOT up IN i.top_tokens THEN up END) AS raised
UNWIND i.top_tokens AS down
WITH p, i, o, raised, collect(CASE WHEN NOT down IN o.top_tokens THEN down END) AS lowered,
     CASE WHEN i.target_prob > 0 AND o.target_prob > 0 THEN o.target_prob / i.target_prob END AS target_gain,
     CASE WHEN i.pred_prob > 0 AND o.pred_prob > 0 THEN o.pred_prob / i.pred_prob END AS pred_gain
RETURN p.uid AS pass, o.layer AS layer, o.kind AS norm, i.target_prob AS target_prob_in,
       o.target_prob AS target_prob_out, target_gain, i.target_rank AS target_rank_in,
       o.target_rank AS target_rank_out, i.pred_prob AS pred_prob_in, o.pred_prob AS pred_prob_out, pred_gain,
       raised, lowered
ORDER BY coalesce(abs(log(target_gain)), -1.0) DESC, pass, layer, norm
