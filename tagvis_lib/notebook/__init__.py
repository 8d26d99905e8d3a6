"""What the notebooks call and nothing else needs: their steps (experiments), figures and overlays,
tables (reporting), the interactive viewer (widgets), model and loss views (inspection), and the
papermill runner of ``tagvis reproduce``. Import the modules themselves
(``from tagvis_lib.notebook import experiments as ex``)."""
