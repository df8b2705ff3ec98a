"""Training machinery: the :class:`~rtmdet.engine.trainer.Trainer` loop with bit-exact resume
(``trainer``), the optimiser and LR schedule (``optim``), the model EMA (``ema``), process-group
setup and the one sharded epoch sampler (``distributed``), and the MLflow run of a run folder
(``tracking``: one run per variant and seed that train, eval and bench log into; the store opened
under a file lock and experiments got-or-created in ``tracking_store``; the run folder's record and
spool in ``tracking_spool``; kills, restarts and a busy store in ``tracking_run``).
"""
