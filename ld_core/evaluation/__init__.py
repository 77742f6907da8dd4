"""Evaluation statistics without torch: the seed spread of a metric split into training and evaluation parts
(:mod:`.seed_spread`), COCO AP on subsets of the validation images (:mod:`.subset_ap`), a run's metrics from
mmdet's evaluators (:mod:`.metrics`)."""
