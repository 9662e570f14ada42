"""ml_collections config files: `--config=configs/paper.py:<task>,<method>,<student>`.

base.py holds the training hyperparameters (the paper's defaults), students.py what differs per
student, methods.py what differs per method, paper.py puts them together for one run of the
paper's grid, demo.py is the offline demo's run.
"""
