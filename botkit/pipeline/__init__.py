"""The turn pipeline, one stage a module, in the order a delivery goes through them:

- `intake`: admission in the submitting task: route, bounds, commands, middleware
  verdict; the claim of the event id and the journal entry in one durable write.
- `workers`: one worker per busy thread: owns the thread (a lease on a shared store),
  runs its journaled turns in journal order; sweeps for threads nobody owns (recovery).
- `runner`: one turn: session, progress, the backend's stream through the renderer
  (`botkit.render`, writing ahead through `screen`), the record.
- `recovery`: a turn cut off mid-answer: its final edit delivered again, or its text
  kept and marked interrupted.
- `dispatcher`: the stages wired together.
"""

from botkit.pipeline.dispatcher import Dispatcher

__all__ = ["Dispatcher"]
