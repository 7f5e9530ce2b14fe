"""slime as the distributed engine: ``trainer=slime`` turns the suite's config into slime's launch plan.

* :mod:`suite.slime.mapping`: the one table config field -> slime flag, and the train.py argv it renders;
* :mod:`suite.slime.flags`: slime's argument list (``slime_flags.txt``, with the commits it was read from);
* :mod:`suite.slime.plan`: the plan (data, teacher server, ``ray job submit ... train.py``, environment);
* :mod:`suite.slime.runner`: run the plan, convert slime's saved iterations to HF, score them;
* :mod:`suite.slime.reward_hook`: the reward post-process slime imports in its own processes.

This package imports nothing heavy at import time: slime imports ``suite.slime.reward_hook`` inside
its rollout process.
"""
