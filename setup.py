"""Installable package for the classic TensorFlow image-classification tutorials.

    pip install -e .            # the tutorials and their console scripts
    pip install -e '.[test]'    # plus what the test suite needs
    pip install -e '.[charts]'  # matplotlib, for --chart and plot_curves.py
    pip install -e '.[notebook]'  # JupyterLab, Notebook 7, the widgets
    pip install -e '.[docs]'    # MkDocs and Material, to build the site
"""
from setuptools import find_packages, setup

setup(
    name='tf-classic-tutorials',
    version='0.1.0',
    description=('The classic TensorFlow CIFAR-10 and MNIST CNN tutorials and '
                 'image retraining, running on TensorFlow 2.x (tf.compat.v1).'),
    # TensorFlow 2.21's own requirement.
    python_requires='>=3.10',
    packages=find_packages(include=['cifar10', 'cifar10.*', 'mnist_cnn',
                                    'image_retraining', 'cli_support',
                                    'tutorials_common']),
    install_requires=[
        # 2.16 is the first release whose tf.compat.v1 queue runners and
        # estimator-free MonitoredTrainingSession we test; 2.21 is what CI runs.
        'tensorflow>=2.16,<2.22',
        # TensorFlow 2.21 no longer installs TensorBoard, and `tensorboard
        # --logdir` is part of how the tutorials are used.
        'tensorboard>=2.16,<2.22',
        'numpy',
        'six',
        # Not a new dependency: TensorFlow's own (it asks for >=0.5.1,<1).
        # ml_dtypes 0.7.0 initialises itself for over a second of CPU on
        # every `import tensorflow`, 0.6.0 in a few hundredths (the README's
        # Tests section has the figures).
        'ml_dtypes>=0.5.1,<0.7',
    ],
    extras_require={
        # selenium drives Debian's chromium for the browser tests;
        # hypothesis generates the inputs of the fuzz tests; pytest-xdist runs
        # the suite on every core; packaging reads the lock. The versions the
        # tests run with are locked in constraints.txt (the README's test
        # command installs with -c constraints.txt).
        'test': ['pytest>=7', 'pytest-xdist>=3', 'selenium>=4.10',
                 'hypothesis>=6.100', 'matplotlib>=3.5', 'packaging>=23'],
        # The pictures: mnist_predict/cifar10_predict --chart and
        # scripts/plot_curves.py. An extra, not a dependency: nothing else
        # draws, and matplotlib brings Pillow and its fonts with it.
        'charts': ['matplotlib>=3.5'],
        # The documentation site (mkdocs.yml, docs/): mkdocs serve / build.
        'docs': ['mkdocs>=1.6', 'mkdocs-material>=9.5'],
        'hub': ['tensorflow_hub'],
        'torch': ['torch'],
        # The notebooks (notebooks/*.ipynb), their DrawDigit widget
        # (mnist_cnn/canvas.py, an anywidget: no extension to build) and
        # scripts/plot_curves.py's matplotlib pictures; nbclient and nbformat
        # run the notebooks headless in the tests. Lower bounds: JupyterLab 4
        # and Notebook 7 (the frontends tested), anywidget's `export default
        # {render}` modules, ipywidgets 8's FileUpload value.
        'notebook': ['jupyterlab>=4.0', 'notebook>=7.0', 'anywidget>=0.9',
                     'ipywidgets>=8.0', 'ipykernel>=6.0', 'matplotlib>=3.5',
                     'nbclient>=0.7', 'nbformat>=5.7'],
    },
    # The DrawDigit widget's browser side, read from beside canvas.py, and
    # the fused kernels' sources, compiled on first use (kernels/build.py).
    package_data={'mnist_cnn': ['canvas.js', 'canvas.css'],
                  'cifar10.kernels': ['lrn_kernel.cc', 'distort_kernel.cc']},
    entry_points={
        'console_scripts': [
            'cifar10_train=cli_support.launch:cifar10_train',
            'cifar10_eval=cli_support.launch:cifar10_eval',
            'cifar10_multi_gpu_train=cli_support.launch:cifar10_multi_gpu_train',
            'cifar10_distributed_train=cli_support.launch:cifar10_distributed_train',
            'cifar10_predict=cli_support.launch:cifar10_predict',
            'cifar10_export=cli_support.launch:cifar10_export',
            'mnist_deep=cli_support.launch:mnist_deep',
            'mnist_predict=cli_support.launch:mnist_predict',
            'mnist_feature_maps=cli_support.launch:mnist_feature_maps',
            'mnist_draw_server=cli_support.launch:mnist_draw_server',
            'retrain=cli_support.launch:retrain',
            'label_image=cli_support.launch:label_image',
            'export_cifar10_features=cli_support.launch:export_cifar10_features',
            'cifar10_to_folders=cli_support.launch:cifar10_to_folders',
        ],
    },
)
