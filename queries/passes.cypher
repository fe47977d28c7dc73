// The passes in the store, newest first.
// @param model: str = ''  only passes of this model ('' = all)
// @param incomplete: bool = false  also list passes not (yet) marked complete
MATCH (p:Pass)
WHERE ($model = '' OR p.model = $model) AND (p.complete = true OR $incomplete)
RETURN p.uid AS uid, p.model AS model, p.prompt AS prompt, p.prediction AS prediction,
       p.prediction_prob AS prediction_prob, p.target AS target, p.complete AS complete, p.created AS created
ORDER BY created DESC
