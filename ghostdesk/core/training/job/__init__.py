"""The training child's job: one run, top to bottom, inside the child process.

Read it in the order it runs (setup -> fit -> evaluate -> save):

- `training_job.py`: `TrainingJob.run()`, the four phases, and every failure as a Failed event
- `setup.py`: the feedback, the device, the base model and its tokenizer
- `fit.py`: the TRL trainer with its LoRA (peft), the steps, checkpoints, stop and resume
- `evaluate.py`: the new adapter against the one it would replace, on held-out feedback
- `save.py`: the adapter as a llama.cpp GGUF, into the registry
- `stop.py`: how the job hears it should stop (the run's STOP file, SIGTERM)
- `child.py`: the process around it (`python -m ghostdesk.core.training RUN.json`)
"""
