"""Training machinery: the :class:`~rtmdet.engine.trainer.Trainer` loop with bit-exact resume
(``trainer``), the optimiser and LR schedule (``optim``), the model EMA (``ema``), process-group
setup and the one sharded epoch sampler (``distributed``), and MLflow run records linked by tags
(``tracking``, used by the trainer and by ``rtmdet eval``/``report``).
"""
