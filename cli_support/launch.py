"""How a command starts: TensorFlow loaded quietly first, then the command.

TensorFlow prints its start-up notices while it loads, so they can be kept
off the console only if the filter (tutorials_common.console) is in place
before the command's module imports TensorFlow. This module imports no
TensorFlow itself: the console scripts of setup.py name the functions at the
bottom, and a command file run as `python cifar10_train.py` or `python -m
cifar10.cifar10_train` hands over to `start` in its first lines.
"""
import importlib

from tutorials_common import console


def start(module_name):
  """Loads TensorFlow quietly, then runs module_name's run() (which exits)."""
  console.quiet_tensorflow()
  return importlib.import_module(module_name).run()


# Each console script of setup.py: its name, and the module whose run() it
# starts.
COMMANDS = {
    'cifar10_train': 'cifar10.cifar10_train',
    'cifar10_eval': 'cifar10.cifar10_eval',
    'cifar10_multi_gpu_train': 'cifar10.cifar10_multi_gpu_train',
    'cifar10_distributed_train': 'cifar10.cifar10_distributed_train',
    'cifar10_predict': 'cifar10.cifar10_predict',
    'cifar10_export': 'cifar10.cifar10_export',
    'mnist_deep': 'mnist_cnn.mnist_deep',
    'mnist_predict': 'mnist_cnn.mnist_predict',
    'mnist_feature_maps': 'mnist_cnn.mnist_feature_maps',
    'mnist_draw_server': 'mnist_cnn.mnist_draw_server',
    'retrain': 'image_retraining.retrain',
    'label_image': 'image_retraining.label_image',
    'export_cifar10_features': 'image_retraining.export_cifar10_features',
    'cifar10_to_folders': 'image_retraining.cifar10_to_folders',
}


def _console_script(name):
  def console_script():
    return start(COMMANDS[name])
  console_script.__name__ = name
  console_script.__doc__ = 'Starts the %s command.' % name
  return console_script


cifar10_train = _console_script('cifar10_train')
cifar10_eval = _console_script('cifar10_eval')
cifar10_multi_gpu_train = _console_script('cifar10_multi_gpu_train')
cifar10_distributed_train = _console_script('cifar10_distributed_train')
cifar10_predict = _console_script('cifar10_predict')
cifar10_export = _console_script('cifar10_export')
mnist_deep = _console_script('mnist_deep')
mnist_predict = _console_script('mnist_predict')
mnist_feature_maps = _console_script('mnist_feature_maps')
mnist_draw_server = _console_script('mnist_draw_server')
retrain = _console_script('retrain')
label_image = _console_script('label_image')
export_cifar10_features = _console_script('export_cifar10_features')
cifar10_to_folders = _console_script('cifar10_to_folders')
