"""The fit step of cryptocast's training pipeline.

The TypeScript CLI builds the dataset (point-in-time features, targets looked up by time) and the walk-forward
folds, then calls `python -m cryptocast_trainer fit`. This package fits XGBoost (and the linear baseline) on each
fold, tunes hyperparameters with Optuna inside a time budget, fits the final models and draws the report's
figures. It returns out-of-sample predictions; every metric and the promotion decision are computed in TypeScript.
"""
