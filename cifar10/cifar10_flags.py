"""The flags the CIFAR-10 commands share, and the settings read from them.

Commands import this module; the library (cifar10.py, training.py, ...)
takes its settings as arguments and defines no flags. Call the define_*
functions from a command's define_flags(), which cli_support.entry.run calls
before parsing the command line.
"""
from absl import flags

from cifar10 import cifar10
from cifar10 import precision
from cifar10 import schedules
from cifar10 import training
from cli_support import entry

FLAGS = flags.FLAGS

_USE_FP16_HELP = {
    'train': 'Train the model using fp16: float16 variables and checkpoints '
             '(true/false).',
    'eval': 'Evaluate with float16 weights, as a --use_fp16 training run '
            'wrote them (true/false).',
}


def define_flags(use_fp16_help='train'):
  """Defines the flags every CIFAR-10 script shares.

  use_fp16_help: 'train' or 'eval', what --use_fp16 does in this command.
  """
  flags.DEFINE_integer('batch_size', cifar10.DEFAULT_BATCH_SIZE,
                       'Number of images to process in a batch (images).',
                       lower_bound=1)
  flags.DEFINE_string('data_dir', cifar10.DEFAULT_DATA_DIR,
                      'Path to the CIFAR-10 data directory (a folder holding '
                      'cifar-10-batches-bin/).')
  entry.require_folder('data_dir')
  flags.DEFINE_boolean('use_fp16', False, _USE_FP16_HELP[use_fp16_help])


def define_precision_flag(flag_values=FLAGS):
  """--precision, for the trainers and evaluation (beside --use_fp16)."""
  flags.DEFINE_enum('precision', 'float32', precision.PRECISIONS,
                    "The arithmetic, with Keras's policy names. 'float32': "
                    "all float32. 'mixed_bfloat16': bfloat16 convolutions and "
                    'dense layers, for CPUs with bfloat16 units (AVX512_BF16, '
                    "AMX). 'mixed_float16': float16 with loss scaling, for "
                    'GPUs. Variables and checkpoints are float32 in all.',
                    flag_values=flag_values)
  flags.register_multi_flags_validator(
      ['precision', 'use_fp16'],
      lambda values: values['precision'] == 'float32' or not values['use_fp16'],
      message='--use_fp16 (float16 variables) and a mixed --precision '
      '(float32 variables) exclude each other: pass one of them.',
      flag_values=flag_values)


def precision_from_flags():
  """The arithmetic the flags ask for: --precision, or 'float16' for the
  tutorial's --use_fp16 (float16 variables)."""
  return 'float16' if FLAGS.use_fp16 else FLAGS.precision


def define_schedule_flags():
  """The trainers' flags that choose the training schedule."""
  flags.DEFINE_enum('schedule', 'tutorial', schedules.SCHEDULES,
                    "'tutorial': SGD at 0.1, divided by 10 every 350 epochs, "
                    "until --max_steps. 'fast': Nesterov momentum, a linear "
                    'warm-up and decay to zero over --fast_epochs, label '
                    "smoothing; stops at the end of --fast_epochs. 'fast50': "
                    'fast retuned for 50 epochs (twice the peak rate, a '
                    "shorter warm-up, no brightness/contrast jitter). "
                    "'fast25': fast50 over 25 epochs, its training crops "
                    'within 2 pixels of the centre.')
  flags.DEFINE_float('fast_epochs', None,
                     'Length of the fast schedules (epochs of 50,000 images; '
                     'unset: %g for fast, %g for fast50, %g for fast25).' %
                     (schedules.DEFAULT_FAST_EPOCHS,
                      schedules.DEFAULT_FAST50_EPOCHS,
                      schedules.DEFAULT_FAST25_EPOCHS))
  flags.register_validator('fast_epochs',
                           lambda epochs: epochs is None or epochs > 0,
                           message='--fast_epochs must be more than 0.')


def define_trainer_flags():
  """Every trainer's flags: the shared ones, schedule, precision, the loop."""
  define_flags()
  define_schedule_flags()
  define_precision_flag()
  defaults = training.LoopSettings()
  flags.DEFINE_string('train_dir', defaults.train_dir,
                      'Directory where to write event logs and checkpoints.')
  entry.require_folder('train_dir')
  flags.DEFINE_integer('max_steps', defaults.max_steps,
                       'Number of batches to run (steps, counted across '
                       'resumed runs).', lower_bound=0)
  flags.DEFINE_boolean('log_device_placement', defaults.log_device_placement,
                       'Whether to log device placement (true/false).')
  flags.DEFINE_integer('log_frequency', defaults.log_frequency,
                       'How often to log results to the console (steps).',
                       lower_bound=1)
  flags.DEFINE_boolean('fresh', False,
                       'Start from step 0 instead of resuming from the latest '
                       'checkpoint in --train_dir, removing what a trainer '
                       'wrote there (checkpoints, events, the graph); a '
                       'folder that holds anything else is refused '
                       '(true/false).')
  flags.DEFINE_integer('save_checkpoint_secs', defaults.save_checkpoint_secs,
                       'How often to save a checkpoint (seconds); one is '
                       'always saved at the last step.', lower_bound=1)
  flags.DEFINE_integer('save_summaries_steps', defaults.save_summaries_steps,
                       'How often to write TensorBoard summaries (steps).',
                       lower_bound=1)


def loop_settings():
  """The training loop's settings, from the trainer flags."""
  return training.LoopSettings(
      train_dir=FLAGS.train_dir, max_steps=FLAGS.max_steps,
      log_frequency=FLAGS.log_frequency,
      save_checkpoint_secs=FLAGS.save_checkpoint_secs,
      save_summaries_steps=FLAGS.save_summaries_steps,
      log_device_placement=FLAGS.log_device_placement)


def schedule_from_flags(examples_per_step):
  """The --schedule for this many images per step, and the step to stop at."""
  return training.schedule_and_last_step(FLAGS.schedule, examples_per_step,
                                         FLAGS.fast_epochs, FLAGS.max_steps)
