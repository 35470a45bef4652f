"""Teacher feedback on assessments: records of every answer (``records``), teachers' verdicts
(``feedback``), production accuracy (``accuracy``), datasets (``dataset``), fine-tuning files
(``finetune``), retention (``retention``) and the admin CLI commands (``cli``)."""
