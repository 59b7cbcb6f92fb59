"""Keras 3's own optimizer tests, ported to fastopt with their golden values and
tolerances unchanged.

Source: keras-team/keras at commit 3422977a5e38fb2f7709aaa9a08e47f0c43d0f60,
files keras/src/optimizers/sgd_test.py, adam_test.py, adamw_test.py,
adagrad_test.py, rmsprop_test.py and optimizer_test.py (the base optimizer:
iterations, empty gradients, clipping, EMA, loss scaling, gradient
accumulation, callable learning rates, ``get``, pickling).

How the port reads Keras' API:
* ``backend.Variable(x)`` / ``ops.array(x)`` are float32 NumPy arrays (Keras'
  floatx); a variable with a ``name`` (``backend.Variable(2.0, name="exclude")``)
  is a small ndarray subclass carrying one, since NumPy arrays have no name.
* ``assertAllClose`` keeps Keras' defaults (atol=rtol=1e-6) unless the Keras
  test gives others; ``assertAlmostEqual(x, y, decimal=d)`` is
  ``np.testing.assert_almost_equal`` as in Keras' TestCase.
* ``optimizer._clip_gradients(grads)`` (a private Keras method) is read off a
  step: an SGD with learning rate 1 and the same clip option, from zeros,
  leaves ``-clipped`` in the variable (fastopt clips inside the C step, the
  same code for every optimizer).
* ``optimizer._model_variables_moving_average[i]``,
  ``optimizer._accumulated_gradients[i]`` and ``optimizer._iterations`` are
  ``get_state([v])["average"][0]``, ``get_state([v])["accumulators"][0]``
  and ``optimizer._step[0]``.
* ``run_class_serialization_test`` is the get_config / from_config and
  serialize / deserialize round trip, through JSON.

Left out, and why:
* the ``optimizer.variables`` assertions of sgd_test's test_single_step and
  optimizer_test's test_set_weights and
  test_setting_lr_to_callable_untracks_lr_var: fastopt has no Keras variable
  list; its state is read and written with get_state / set_state
  (tests/test_optim_state.py);
* test_constraints_are_applied, test_overwrite_with_gradient and
  test_overwrite_with_gradient_with_gradient_accumulation: they set attributes
  (``constraint``, ``overwrite_with_gradient``) on Keras variables, which NumPy
  arrays cannot carry;
* test_tf_checkpointing, test_mixed_with_tf_variables and adam_test's
  test_clipnorm_indexed_slices: TensorFlow variables, checkpoints and sparse
  IndexedSlices;
* test_optimizer_auto_naming: Keras makes names unique per session
  ("adam", "adam_1"); fastopt names an optimizer after its class;
* the parametrizations over Adadelta, Adamax, Lion, Nadam, Ftrl and Adafactor:
  fastopt has SGD, Adagrad, RMSprop, Adam and AdamW only.
Changed: test_gradient_accumulation_with_weigth_decay draws its random
gradients from a seeded generator (Keras' draws are unseeded);
test_ema_with_model_fit gives y as zeros of the outputs' shape (1, 2), the
targets Keras' loss broadcasts its (1, 1) zeros to.  Adam's
test_ema checks ``fit``'s moving average, then calls finalize_variable_values,
which Keras' own fit calls after the last epoch.
"""
import json
import pickle

import numpy as np
import pytest

import fastopt as fo
from fastopt import optimizers

F32 = np.float32


def assert_all_close(actual, desired, atol=1e-6, rtol=1e-6):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), atol=atol, rtol=rtol)


def assert_almost_equal(actual, desired, decimal=3):
    np.testing.assert_almost_equal(np.asarray(actual), np.asarray(desired), decimal=decimal)


class Named(np.ndarray):
    """A float32 array with a ``name``, as a Keras variable has."""

    def __new__(cls, value, name):
        obj = np.array(value, dtype=F32).view(cls)
        obj.name = name
        return obj

    def __array_finalize__(self, obj):
        self.name = getattr(obj, "name", None)


def variable(value):
    return np.array(value, dtype=F32)


def clipped(optimizer, grads):
    """``optimizer._clip_gradients(grads)``, read off an SGD step with the same clip."""
    cfg = optimizer.get_config()
    clip = {k: cfg[k] for k in ("clipnorm", "clipvalue", "global_clipnorm") if cfg[k] is not None}
    sgd = optimizers.SGD(learning_rate=1.0, **clip)
    ws = [np.zeros(np.shape(g), dtype=np.asarray(g).dtype) for g in grads]
    sgd.apply_gradients(zip(grads, ws))
    return [-w for w in ws]


def run_class_serialization_test(instance):
    cls = type(instance)
    config = instance.get_config()
    config_json = json.dumps(config, sort_keys=True)
    revived = cls.from_config(config)
    assert json.dumps(revived.get_config(), sort_keys=True) == config_json
    assert set(dir(instance)) == set(dir(revived))
    serialized = json.dumps(optimizers.serialize(instance))
    revived = optimizers.deserialize(json.loads(serialized))
    assert json.dumps(revived.get_config(), sort_keys=True) == config_json
    assert set(dir(instance)) == set(dir(revived))
    return revived


def weight_decay_case(cls):
    """The test_weight_decay of every Keras optimizer test file."""
    grads, var1, var2, var3 = (np.zeros((), F32), variable(2.0), Named(2.0, name="exclude"),
                               variable(2.0))
    optimizer_1 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_1.apply_gradients(zip([grads], [var1]))

    optimizer_2 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_2.exclude_from_weight_decay(var_names=["exclude"])
    optimizer_2.apply_gradients(zip([grads, grads], [var1, var2]))

    optimizer_3 = cls(learning_rate=1.0, weight_decay=0.004)
    optimizer_3.exclude_from_weight_decay(var_list=[var3])
    optimizer_3.apply_gradients(zip([grads, grads], [var1, var3]))

    assert_almost_equal(var1, 1.9760959, decimal=6)
    assert_almost_equal(var2, 2.0, decimal=6)
    assert_almost_equal(var3, 2.0, decimal=6)


def golden_case(optimizer, golden, dtype=F32):
    """The test_correctness_with_golden of every Keras optimizer test file."""
    x = np.ones([10], dtype=dtype)
    grads = np.arange(0.1, 1.1, 0.1).astype(dtype)
    first_grads = np.full((10,), 0.01, dtype=dtype)
    optimizer.apply_gradients(zip([first_grads], [x]))
    for i in range(5):
        assert_all_close(x, golden[i], rtol=5e-4, atol=5e-4)
        optimizer.apply_gradients(zip([grads], [x]))


def single_step_case(optimizer, expected):
    grads = np.array([1.0, 6.0, 7.0, 2.0], F32)
    vars = variable([1.0, 2.0, 3.0, 4.0])
    optimizer.apply_gradients(zip([grads], [vars]))
    assert_all_close(vars, expected, rtol=1e-4, atol=1e-4)


CLASSES = [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.Adagrad, optimizers.RMSprop]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_clip_norm(cls):
    optimizer = cls(clipnorm=1)
    grad = [np.array([100.0, 100.0])]
    assert_all_close(clipped(optimizer, grad)[0], [2**0.5 / 2, 2**0.5 / 2])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_clip_value(cls):
    optimizer = cls(clipvalue=1)
    grad = [np.array([100.0, 100.0])]
    assert_all_close(clipped(optimizer, grad)[0], [1.0, 1.0])


@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.Adagrad,
                                 optimizers.RMSprop], ids=lambda c: c.__name__)
def test_weight_decay(cls):
    weight_decay_case(cls)


# -- sgd_test.py ---------------------------------------------------------------------------

def test_sgd_config():
    run_class_serialization_test(optimizers.SGD(learning_rate=0.5, momentum=0.06, nesterov=True,
                                                weight_decay=0.004))


def test_sgd_single_step():
    single_step_case(optimizers.SGD(learning_rate=0.5), [0.5, -1.0, -0.5, 3.0])


def test_sgd_invalid_momentum():
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=2.0)


def test_sgd_correctness_with_golden():
    golden = np.array(
        [[0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999, 0.9999,
          0.9999, 0.9999], [0.9989, 0.9979, 0.9969, 0.9959, 0.9949, 0.9939,
                            0.9929, 0.9919, 0.9909, 0.9899], [0.9979, 0.9959, 0.9939, 0.9919,
                                                              0.9899, 0.9879, 0.9859, 0.9839, 0.9819, 0.9799],
         [0.9969, 0.9939, 0.9909, 0.9879, 0.9849, 0.9819, 0.9789, 0.9759, 0.9729, 0.9699],
         [0.9959, 0.9919, 0.9879, 0.9839, 0.9799, 0.9759, 0.9719, 0.9679,
          0.9639, 0.9599]]
    )
    golden_case(optimizers.SGD(nesterov=True), golden)


# -- adam_test.py --------------------------------------------------------------------------

def test_adam_config():
    run_class_serialization_test(optimizers.Adam(learning_rate=0.5, beta_1=0.5, beta_2=0.67,
                                                 epsilon=1e-5, amsgrad=True))


def test_adam_single_step():
    single_step_case(optimizers.Adam(learning_rate=0.5), [0.5, 1.5, 2.5, 3.5])


def test_adam_correctness_with_golden():
    golden = np.tile([[0.999], [0.9982], [0.9974], [0.9965], [0.9955]], (1, 10))
    golden_case(optimizers.Adam(amsgrad=True), golden)


def test_adam_ema():
    optimizer = optimizers.Adam(learning_rate=1.0, use_ema=True, ema_momentum=0.9)
    var = np.array([1.0, 2.0], dtype="float32")
    grads = np.array([0.1, 0.2], dtype="float32")

    # First step: EMA is initialized to the first updated variable value
    optimizer.apply_gradients([(grads, var)])
    v1 = var.copy()
    assert_all_close(optimizer.get_state([var])["average"][0], v1)

    # Second step: EMA is updated
    optimizer.apply_gradients([(grads, var)])
    v2 = var.copy()
    expected_ema = 0.9 * v1 + 0.1 * v2
    assert_all_close(optimizer.get_state([var])["average"][0], expected_ema)

    # Finalize: model variable is overwritten by EMA
    optimizer.finalize_variable_values([var])
    assert_all_close(var, expected_ema)

    # Test model.fit()
    model = fo.Sequential([fo.Dense(10, kernel_initializer="ones", use_bias=False)])
    model.compile(optimizer=optimizers.Adam(use_ema=True, ema_momentum=0.9), loss="mse")
    x = np.ones((1, 5), F32)
    y = np.zeros((1, 10), F32)
    model.fit(x, y, verbose=0)
    optimizer = model.optimizer
    ema_weights = optimizer.get_state(model.trainable_variables)["average"][0]
    # Keras' fit finalizes the weights after its last epoch
    optimizer.finalize_variable_values(model.trainable_variables)
    model_weights = model.trainable_variables[0]
    assert_all_close(model_weights, ema_weights)


def test_adam_ema_overwrite_frequency():
    optimizer = optimizers.Adam(learning_rate=1.0, use_ema=True, ema_momentum=0.9,
                                ema_overwrite_frequency=2)
    optimizer_no_ema = optimizers.Adam(learning_rate=1.0)
    var = np.array([1.0, 2.0], dtype="float32")
    var_no_ema = np.array([1.0, 2.0], dtype="float32")
    grads = np.array([0.1, 0.2], dtype="float32")

    # First step: iterations = 0, EMA initialized to v1
    optimizer.apply_gradients([(grads, var)])
    optimizer_no_ema.apply_gradients([(grads, var_no_ema)])
    v1 = var_no_ema.copy()
    # Not overwritten yet (iterations became 1 after increment)
    assert_all_close(var, v1)

    # Second step: iterations = 1, (1 + 1) % 2 = 0. Overwrite!
    optimizer.apply_gradients([(grads, var)])
    optimizer_no_ema.apply_gradients([(grads, var_no_ema)])
    v2 = var_no_ema.copy()
    expected_ema = 0.9 * v1 + 0.1 * v2
    # var should have been updated to v2 and THEN overwritten by EMA
    assert_all_close(var, expected_ema)
    assert_all_close(optimizer.get_state([var])["average"][0], expected_ema)


# -- adamw_test.py -------------------------------------------------------------------------

def test_adamw_config():
    run_class_serialization_test(optimizers.AdamW(learning_rate=0.5, weight_decay=0.008, beta_1=0.5,
                                                  beta_2=0.67, epsilon=1e-5, amsgrad=True))


def test_adamw_single_step():
    single_step_case(optimizers.AdamW(learning_rate=0.5), [0.4980, 1.4960, 2.494, 3.492])


def test_adamw_weight_decay_is_none():
    with pytest.raises(ValueError, match="Argument `weight_decay` must be a float. "
                                         "Received: weight_decay=None"):
        optimizers.AdamW(learning_rate=1.0, weight_decay=None)


def test_adamw_correctness_with_golden():
    golden = np.array(
        [[0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998, 0.4998],
         [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
         [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
         [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
         [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159]]
    )
    golden_case(optimizers.AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2), golden)


# -- adagrad_test.py -----------------------------------------------------------------------

def test_adagrad_config():
    run_class_serialization_test(optimizers.Adagrad(learning_rate=0.5, initial_accumulator_value=0.2,
                                                    epsilon=1e-5))


def test_adagrad_single_step():
    single_step_case(optimizers.Adagrad(learning_rate=0.5), [0.5233, 1.5007, 2.5005, 3.5061])


def test_adagrad_correctness_with_golden():
    golden = np.array(
        [[0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963, 0.9963],
         [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
         [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
         [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
         [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]]
    )
    golden_case(optimizers.Adagrad(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6),
                golden)


# -- rmsprop_test.py -----------------------------------------------------------------------

def test_rmsprop_config():
    run_class_serialization_test(optimizers.RMSprop(learning_rate=0.5, rho=0.8, momentum=0.05,
                                                    epsilon=1e-6, centered=True))


def test_rmsprop_single_step():
    single_step_case(optimizers.RMSprop(learning_rate=0.5), [-0.5811, 0.4189, 1.4189, 2.4189])


def test_rmsprop_correctness_with_golden():
    golden = np.tile([[0.9967], [0.9933], [0.9908], [0.9885], [0.9864]], (1, 10))
    golden_case(optimizers.RMSprop(centered=True), golden)


# -- optimizer_test.py (the base optimizer) -------------------------------------------------

def test_iterations_counter():
    v = variable([[1.0, 2.0], [3.0, 4.0]])
    grads = np.array([[1.0, 1.0], [1.0, 1.0]], F32)
    optimizer = optimizers.Adam(learning_rate=1.0)
    assert_all_close(optimizer.iterations, 0)
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(optimizer.iterations, 1)
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(optimizer.iterations, 2)


def test_empty_gradients():
    # Test no valid gradient
    v = variable([[3.0, 4.0], [5.0, 6.0]])
    grads = None
    optimizer = optimizers.SGD(learning_rate=1.0)
    with pytest.raises(ValueError, match="No gradients provided for any variable."):
        optimizer.apply_gradients([(grads, v)])

    # Test filtering of empty gradients
    v2 = variable([[3.0, 4.0], [5.0, 6.0]])
    grads2 = np.array([[1.0, 1.0], [1.0, 1.0]], F32)
    optimizer = optimizers.SGD(learning_rate=1.0)
    with pytest.warns(Warning):
        optimizer.apply_gradients([(grads, v), (grads2, v2)])
    assert_all_close(v, [[3.0, 4.0], [5.0, 6.0]])
    assert_all_close(v2, [[2.0, 3.0], [4.0, 5.0]])


def test_clip_args():
    optimizer = optimizers.SGD(learning_rate=1.0, clipnorm=0.1)
    assert optimizer.clipnorm == 0.1
    optimizer = optimizers.SGD(learning_rate=1.0, clipvalue=0.1)
    assert optimizer.clipvalue == 0.1
    optimizer = optimizers.SGD(learning_rate=1.0, global_clipnorm=0.1)
    assert optimizer.global_clipnorm == 0.1

    # Test invalid arguments
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can"):
        optimizers.SGD(learning_rate=1.0, clipnorm=0.1, clipvalue=0.1)
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can"):
        optimizers.SGD(learning_rate=1.0, clipnorm=0.1, global_clipnorm=0.1)


def test_global_clip_norm():
    optimizer = optimizers.SGD(global_clipnorm=1)
    grad = np.array([50.0, 100.0], dtype="float32")
    global_norm = np.linalg.norm(grad)
    assert_all_close(clipped(optimizer, [grad])[0], grad / global_norm)


def test_ema():
    v = variable([[3.0, 4.0], [5.0, 6.0]])
    grads = np.array([[1.0, 1.0], [1.0, 1.0]], F32)
    optimizer = optimizers.SGD(learning_rate=1.0, use_ema=True, ema_momentum=0.9,
                               ema_overwrite_frequency=3)
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[2.0, 3.0], [4.0, 5.0]])
    assert_all_close(optimizer.get_state([v])["average"][0],
                     [[2.0, 3.0], [4.0, 5.0]])  # initialized after first step
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[1.0, 2.0], [3.0, 4.0]])
    assert_all_close(optimizer.get_state([v])["average"][0], [[1.9, 2.9], [3.9, 4.9]])
    optimizer.apply_gradients([(grads, v)])
    # Variables were overwritten with EMA
    assert_all_close(v, [[1.71, 2.71], [3.71, 4.71]])
    assert_all_close(optimizer.get_state([v])["average"][0], [[1.71, 2.71], [3.71, 4.71]])


def test_ema_with_model_fit():
    x_train = np.ones((1, 1)).astype("float32")
    y_train = np.zeros((1, 2)).astype("float32")  # Keras broadcasts its (1, 1) zeros to the outputs
    optimizer = optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9)
    model = fo.Sequential([fo.Dense(2, kernel_initializer="ones", use_bias=False)])
    model.compile(loss="mse", optimizer=optimizer)
    model.fit(x_train, y_train, batch_size=1, epochs=2, verbose=0)
    assert_all_close(optimizer.get_state(model.trainable_variables)["average"][0], [[0.891, 0.891]],
                     atol=1e-5)
    # Keras' fit finalizes the weights after its last epoch
    optimizer.finalize_variable_values(model.trainable_variables)
    assert_all_close(model.trainable_variables[0], [[0.891, 0.891]], atol=1e-5)


def test_get_method():
    obj = optimizers.get("sgd")
    assert isinstance(obj, optimizers.SGD)
    obj = optimizers.get("adamw")
    assert isinstance(obj, optimizers.AdamW)

    obj = optimizers.get(None)
    assert obj is None

    with pytest.raises(ValueError):
        optimizers.get("typo")


def test_static_loss_scaling():
    v = variable([[1.0, 2.0], [3.0, 4.0]])
    grads = np.array([[1.0, 2.0], [3.0, 4.0]], F32) * 1024.0
    optimizer = optimizers.SGD(learning_rate=1.0, loss_scale_factor=1024.0)
    optimizer.apply_gradients([(grads, v)])
    assert optimizer.scale_loss(1.0) == 1024.0
    assert_all_close(v, [[0.0, 0.0], [0.0, 0.0]])


def test_gradient_accumulation():
    v = variable([[1.0, 2.0], [3.0, 4.0]])
    grads = np.array([[1.0, 1.0], [1.0, 1.0]], F32)
    optimizer = optimizers.SGD(learning_rate=1.0, gradient_accumulation_steps=3)
    assert optimizer.gradient_accumulation_steps == 3

    def accumulated():
        return optimizer.get_state([v])["accumulators"][0]

    # Iteration 1
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[1.0, 2.0], [3.0, 4.0]])
    assert_all_close(accumulated(), [[1.0, 1.0], [1.0, 1.0]])
    assert_all_close(optimizer._step[0], 1)
    assert_all_close(optimizer.iterations, 0)

    # Iteration 2
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[1.0, 2.0], [3.0, 4.0]])
    assert_all_close(accumulated(), [[2.0, 2.0], [2.0, 2.0]])
    assert_all_close(optimizer._step[0], 2)
    assert_all_close(optimizer.iterations, 0)

    # Iteration 3
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[0.0, 1.0], [2.0, 3.0]])
    assert_all_close(accumulated(), [[0.0, 0.0], [0.0, 0.0]])
    assert_all_close(optimizer._step[0], 3)
    assert_all_close(optimizer.iterations, 1)

    # Iteration 4
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[0.0, 1.0], [2.0, 3.0]])
    assert_all_close(accumulated(), [[1.0, 1.0], [1.0, 1.0]])
    assert_all_close(optimizer._step[0], 4)
    assert_all_close(optimizer.iterations, 1)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw", "adagrad", "rmsprop"])
def test_gradient_accumulation_with_weigth_decay(optimizer):
    optimizer1 = optimizers.get({"class_name": optimizer, "config": {"weight_decay": 0.05}})
    optimizer3 = optimizers.get({"class_name": optimizer,
                                 "config": {"weight_decay": 0.05, "gradient_accumulation_steps": 3}})
    variable1 = variable([[0.9], [0.5]])
    variable3 = variable([[0.9], [0.5]])
    rng = np.random.default_rng(0)

    for epoch in range(8):
        grads3 = rng.random([3, 2, 1]).astype("float32")

        grads1 = grads3.mean(axis=0)
        optimizer1.apply_gradients([(grads1, variable1)])

        for batch in range(3):
            grads3_ = grads3[batch]
            optimizer3.apply_gradients([(grads3_, variable3)])

    assert_all_close(variable1, variable3)


def test_callable_learning_rate():
    v = variable([[1.0, 2.0], [3.0, 4.0]])
    grads = np.array([[1.0, 1.0], [1.0, 1.0]], F32)
    optimizer = optimizers.SGD(learning_rate=lambda: 0.1)
    assert_all_close(optimizer.iterations, 0)
    optimizer.apply_gradients([(grads, v)])
    assert_all_close(v, [[0.9, 1.9], [2.9, 3.9]])
    assert_all_close(optimizer.iterations, 1)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw", "adagrad", "rmsprop"])
def test_pickleable_optimizers(optimizer):
    optimizer = optimizers.get(optimizer)
    reloaded = pickle.loads(pickle.dumps(optimizer))

    assert optimizer.get_config() == reloaded.get_config()
