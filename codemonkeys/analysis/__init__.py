"""Analysis of runs without new model calls: the unbiased pass@k estimator (``passk``),
coverage forecasts from the power law of repeated sampling (``forecast``), what a smaller
configuration would have given (``whatif``) and the adaptive sampling stop rule
(``stopping``). Pure functions over plain values; the report and the generation stage
call them."""
