"""Ctrl-C and SIGTERM as requests to stop a training loop at a safe point.

A training loop checks `requested` between steps; when it is set, it saves a
checkpoint inside `saving()` (a further Ctrl-C waits until the save is
complete) and stops. A second Ctrl-C changes nothing; the third, outside the
save, stops at once (a step that never returns). The signal handlers are installed only for the `with`
block, in the main thread, so a notebook or a test that uses the loop
without signals is unaffected.

    with interrupts.StopRequests() as stop:
      while not stop.requested:
        train_one_step()
      if stop.requested:
        raise interrupts.stopped_and_saved(stop, save_checkpoint)

where save_checkpoint returns (step, checkpoint path).
"""
import signal
import threading

# The exit statuses of a process ended by SIGINT and SIGTERM, as shells report.
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
# A repeated Ctrl-C waits for the step and the save; this many stop at once.
FORCE_AFTER = 3
_NAMES = {signal.SIGINT: 'Ctrl-C', signal.SIGTERM: 'SIGTERM'}


class Interrupted(Exception):
  """A loop stopped at a signal, its work saved; the command exits with
  exit_status after printing the message (one line)."""

  def __init__(self, signal_number, message):
    super(Interrupted, self).__init__(message)
    self.signal_number = signal_number
    self.exit_status = EXIT_STATUS.get(signal_number, 130)


def resume_message(step, checkpoint_path):
  """The line a trainer prints when it stops at a signal, its work saved."""
  if checkpoint_path:
    return ('Interrupted at step %d; checkpoint saved to %s; run the same '
            'command to resume.' % (step, checkpoint_path))
  return ('Interrupted at step %d; run the same command to resume from the '
          'last checkpoint.' % step)


def stopped_and_saved(stop, save):
  """What a loop raises once it stopped at stop's request: save() (which
  returns (step, checkpoint path or None)) runs with further signals held,
  and the Interrupted carries the line to print."""
  with stop.saving():
    step, path = save()
  return Interrupted(stop.signal_number, resume_message(step, path))


class StopRequests(object):
  """Catches SIGINT and SIGTERM while active; `requested` says one came."""

  def __init__(self, signals=(signal.SIGINT, signal.SIGTERM)):
    self.signal_number = None
    self._signals = signals
    self._previous = {}
    self._saving = False
    self._count = 0

  @property
  def requested(self):
    return self.signal_number is not None

  def _handle(self, signal_number, frame):
    del frame  # Unused.
    self._count += 1
    if self.signal_number is None:
      self.signal_number = signal_number
    elif self._count >= FORCE_AFTER and not self._saving:
      # The loop has not reached a safe point after repeated requests (a
      # step that does not return, such as a worker waiting for the others):
      # stop now. While the checkpoint is being written, wait for it.
      raise KeyboardInterrupt

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for number in self._signals:
        self._previous[number] = signal.signal(number, self._handle)
    return self

  def __exit__(self, *exc_info):
    for number, handler in self._previous.items():
      signal.signal(number, handler)
    self._previous = {}
    return False

  def saving(self):
    """A block during which further signals are ignored (a save)."""
    requests = self

    class _Saving(object):

      def __enter__(self):
        requests._saving = True  # pylint: disable=protected-access

      def __exit__(self, *exc_info):
        requests._saving = False  # pylint: disable=protected-access
        return False

    return _Saving()

  def name(self):
    """'Ctrl-C' or 'SIGTERM': what stopped the loop."""
    return _NAMES.get(self.signal_number, 'a signal')
