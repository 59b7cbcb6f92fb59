"""The Keras 3 model API around Sequential: fo.Input, the fo.layers namespace,
layer.get_weights/set_weights (into the model's buffer, refusing before
touching), get_layer, input_shape/output_shape, Sequential.from_config,
fo.clone_model, a single layer instead of a list, and unknown keywords that
name the Keras argument meant."""
import numpy as np
import pytest

import fastopt as fo


def model_13(**kw):
    return fo.Sequential([fo.Input((13,)), fo.Dense(10, activation="relu"), fo.Dense(1)],
                         dtype="float64", seed=3, **kw)


def weights_equal(a, b):
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# -- fo.Input and fo.layers -------------------------------------------------------------------

def test_input_first_builds_the_model():
    model = model_13()
    assert model.built
    assert len(model.layers) == 2  # the Input is not among the layers, as in Keras 3
    assert [v.shape for v in model.trainable_variables] == [(13, 10), (10,), (10, 1), (1,)]
    assert model.layers[0].input_shape == (None, 13) and model.layers[0].output_shape == (None, 10)
    assert model.layers[1].input_shape == (None, 10) and model.layers[1].output_shape == (None, 1)
    x = np.random.default_rng(0).standard_normal((5, 13))
    assert model.predict(x).shape == (5, 1)
    # the same model as with input_shape on the first layer, weight for weight
    legacy = fo.Sequential([fo.Dense(10, activation="relu", input_shape=(13,)), fo.Dense(1)],
                           dtype="float64", seed=3)
    assert weights_equal(model.get_weights(), legacy.get_weights())


def test_input_forms():
    inp = fo.Input((4,))
    assert isinstance(inp, fo.InputLayer) and inp.shape == (None, 4) and inp.batch_shape == (None, 4)
    assert fo.Input(4).shape == (None, 4)
    assert fo.Input(shape=(4,), batch_size=8).shape == (8, 4)
    assert fo.Input(batch_shape=(None, 6)).shape == (None, 6)
    assert fo.layers.InputLayer(shape=(2,)).shape == (None, 2)
    m = fo.Sequential(dtype="float64")
    m.add(fo.Input((3,)))
    assert not m.built
    m.add(fo.Dense(2))
    assert m.built and m.layers[0].kernel.shape == (3, 2)
    m = fo.Sequential([fo.Input((3,), dtype="float64"), fo.Dense(1)], dtype="float64")
    assert m.built
    m = fo.Sequential([fo.Input((3,), batch_size=4), fo.Dense(1)])
    assert m.predict(np.ones((7, 3))).shape == (7, 1)  # batch_size is informative only


@pytest.mark.parametrize("make, exc, word", [
    (lambda: fo.Input(), ValueError, "shape"),
    (lambda: fo.Input((3, 2)), ValueError, "shape"),
    (lambda: fo.Input((0,)), ValueError, "shape"),
    (lambda: fo.Input((2.5,)), TypeError, "shape"),
    (lambda: fo.Input("3"), TypeError, "shape"),
    (lambda: fo.Input((3,), batch_size=0), ValueError, "batch_size"),
    (lambda: fo.Input((3,), dtype="int32"), ValueError, "dtype"),
    (lambda: fo.Input((3,), batch_shape=(None, 3)), ValueError, "batch_shape"),
    (lambda: fo.Input(batch_shape=(3,)), ValueError, "batch_shape"),
    (lambda: fo.Input((3,), sparse=True), TypeError, "sparse"),
    (lambda: fo.Sequential([fo.Input((3,), dtype="float64"), fo.Dense(1)]), ValueError, "dtype"),
    (lambda: fo.Sequential([fo.Input((3,)), fo.Input((3,)), fo.Dense(1)]), ValueError, "Input"),
    (lambda: fo.Sequential([fo.Dense(1), fo.Input((3,))]), ValueError, "first"),
    (lambda: fo.Sequential([fo.Input((3,)), fo.Dense(1, input_shape=(4,))]), ValueError, "input_shape"),
])
def test_bad_input(make, exc, word):
    with pytest.raises(exc, match=word):
        make()


def test_layers_namespace():
    assert fo.layers.Dense is fo.Dense
    assert fo.layers.Input is fo.Input and fo.layers.InputLayer is fo.InputLayer
    assert issubclass(fo.Dense, fo.layers.Layer) and issubclass(fo.InputLayer, fo.layers.Layer)
    d = fo.Dense(3, activation="tanh", name="mine")
    again = fo.layers.deserialize(fo.layers.serialize(d))
    assert type(again) is fo.Dense and again.get_config() == d.get_config()

    class Scale(fo.layers.Layer):  # a new layer type is known by its class name
        def __init__(self, factor=2.0, name=None):
            self.factor, self.name = factor, name

        def get_config(self):
            return {"factor": self.factor, "name": self.name}

    assert fo.layers.deserialize({"class_name": "Scale", "config": {"factor": 3.0, "name": None}}).factor == 3.0
    with pytest.raises(ValueError, match="NoSuchLayer"):
        fo.layers.deserialize({"class_name": "NoSuchLayer", "config": {}})
    with pytest.raises(TypeError, match="layer"):
        fo.layers.serialize("dense")


# -- layer weights ----------------------------------------------------------------------------

def test_layer_get_weights_are_copies_of_the_model_views():
    model = model_13()
    k, b = model.layers[0].get_weights()
    assert k.shape == (13, 10) and b.shape == (10,)
    np.testing.assert_array_equal(k, model.get_weights()[0])
    k[...] = 7.0  # a copy: the model is untouched
    assert not np.any(model.get_weights()[0] == 7.0)
    assert fo.Dense(2).get_weights() == []
    m = fo.Sequential([fo.Dense(2, use_bias=False, input_shape=(3,))])
    assert [w.shape for w in m.layers[0].get_weights()] == [(3, 2)]
    assert model.layers[0].count_params() == 13 * 10 + 10


def test_layer_set_weights_writes_into_the_model():
    model = model_13()
    x = np.random.default_rng(1).standard_normal((6, 13))
    before = model.predict(x)
    rng = np.random.default_rng(2)
    new = [rng.standard_normal((10, 1)), rng.standard_normal(1)]
    model.layers[1].set_weights(new)
    np.testing.assert_array_equal(model.get_weights()[2], new[0])
    np.testing.assert_array_equal(model.layers[1].kernel, new[0])
    assert model.layers[1].kernel.base is not None  # still a view into the flat buffer
    hidden = np.maximum(x @ model.layers[0].kernel + model.layers[0].bias, 0)
    np.testing.assert_allclose(model.predict(x), hidden @ new[0] + new[1], rtol=1e-12)
    assert not np.allclose(model.predict(x), before)
    model.layers[1].set_weights([w.tolist() for w in new])  # nested lists are fine
    # a float32 model takes float64 arrays, rounded
    m32 = fo.Sequential([fo.Dense(2, input_shape=(2,))], seed=0)
    m32.layers[0].set_weights([np.full((2, 2), 0.1), np.zeros(2)])
    assert m32.layers[0].kernel.dtype == np.float32 and m32.layers[0].kernel[0, 0] == np.float32(0.1)


@pytest.mark.parametrize("bad, exc, word", [
    (lambda k, b: [k], ValueError, "expected 2"),
    (lambda k, b: [k, b, b], ValueError, "expected 2"),
    (lambda k, b: [k, b[:-1]], ValueError, "weights\\[1\\]"),
    (lambda k, b: [k.T, b], ValueError, "weights\\[0\\]"),
    (lambda k, b: [k, np.full_like(b, np.nan)], ValueError, "NaN"),
    (lambda k, b: [k, b.astype(str)], TypeError, "weights\\[1\\]"),
    (lambda k, b: [k, b + 1j], TypeError, "weights\\[1\\]"),
    (lambda k, b: k, TypeError, "list"),
    (lambda k, b: "kernel", TypeError, "list"),
    (lambda k, b: None, TypeError, "list"),
])
def test_layer_set_weights_refuses_before_touching(bad, exc, word):
    model = model_13()
    before = model.get_weights()
    k, b = model.layers[0].get_weights()
    with pytest.raises(exc, match=word):
        model.layers[0].set_weights(bad(k + 1.0, b + 1.0))
    assert weights_equal(model.get_weights(), before)


def test_set_weights_of_an_unbuilt_layer():
    with pytest.raises(ValueError, match="expected 0"):
        fo.Dense(2).set_weights([np.zeros((3, 2)), np.zeros(2)])


# -- get_layer, shapes ----------------------------------------------------------------------------

def test_get_layer():
    model = fo.Sequential([fo.Dense(4, input_shape=(3,), name="hidden"), fo.Dense(2), fo.Dense(1, name="out")])
    assert [l.name for l in model.layers] == ["hidden", "dense", "out"]
    assert model.get_layer("hidden") is model.layers[0]
    assert model.get_layer(name="out") is model.layers[2]
    assert model.get_layer(index=1) is model.layers[1]
    assert model.get_layer(index=-1) is model.layers[2]
    with pytest.raises(ValueError, match="Did you mean 'hidden'"):
        model.get_layer("hiden")
    with pytest.raises(ValueError, match="only has 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match="only a layer name or a layer index"):
        model.get_layer("out", 1)
    with pytest.raises(ValueError, match="either a layer name or layer index"):
        model.get_layer()
    with pytest.raises(TypeError, match="index"):
        model.get_layer(index=1.0)
    with pytest.raises(TypeError, match="name"):
        model.get_layer(3)


def test_layer_names_are_unique():
    model = fo.Sequential([fo.Dense(2, name="dense_1", input_shape=(3,)), fo.Dense(2), fo.Dense(1)])
    assert [l.name for l in model.layers] == ["dense_1", "dense", "dense_2"]
    with pytest.raises(ValueError, match="unique names"):
        fo.Sequential([fo.Dense(2, name="a"), fo.Dense(1, name="a")])


def test_input_and_output_shapes():
    model = fo.Sequential([fo.Dense(6, input_shape=(4,)), fo.Dense(3), fo.Dense(2)])
    assert [l.input_shape for l in model.layers] == [(None, 4), (None, 6), (None, 3)]
    assert [l.output_shape for l in model.layers] == [(None, 6), (None, 3), (None, 2)]
    lazy = fo.Sequential([fo.Dense(6), fo.Dense(2)])
    assert lazy.layers[0].input_shape is None and lazy.layers[0].output_shape == (None, 6)
    lazy.build((None, 5))
    assert lazy.layers[1].input_shape == (None, 6) and lazy.layers[0].input_shape == (None, 5)


# -- from_config, clone_model ---------------------------------------------------------------------

def test_from_config_is_the_inverse_of_get_config():
    model = fo.Sequential([fo.Dense(5, activation="tanh", input_shape=(3,), kernel_initializer="he_normal",
                                    kernel_regularizer=fo.regularizers.l2(0.01), name="h"),
                           fo.Dense(2, use_bias=False, bias_initializer="ones")],
                          dtype="float64", seed=11, name="net")
    initial = model.get_weights()
    model.compile("sgd", "mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0)
    again = fo.Sequential.from_config(model.get_config())
    assert again.get_config() == model.get_config()
    assert again.built and again.name == "net" and again.dtype == np.float64
    assert [l.name for l in again.layers] == ["h", "dense"]
    assert weights_equal(again.get_weights(), initial)  # fresh from the initializers and the seed
    assert again.optimizer is None
    # built from fo.Input, or not built at all
    m = model_13()
    assert fo.Sequential.from_config(m.get_config()).get_config() == m.get_config()
    lazy = fo.Sequential([fo.Dense(3), fo.Dense(1)])
    again = fo.Sequential.from_config(lazy.get_config())
    assert not again.built and again.get_config() == lazy.get_config()
    only_input = fo.Sequential([fo.Input((4,))])
    assert fo.Sequential.from_config(only_input.get_config()).get_config()["input_dim"] == 4
    # layers written the Keras way, {"class_name", "config"}
    cfg = model.get_config()
    cfg["layers"] = [fo.layers.serialize(l) for l in model.layers]
    assert fo.Sequential.from_config(cfg).get_config() == model.get_config()


@pytest.mark.parametrize("config, word", [
    ({}, "layers"), ("model", "layers"), ({"layers": [], "trainable": True}, "trainable"),
    ({"layers": [{"class_name": "Conv2D", "config": {}}]}, "Conv2D"),
])
def test_from_config_refuses(config, word):
    with pytest.raises(ValueError, match=word):
        fo.Sequential.from_config(config)


def test_clone_model():
    model = fo.Sequential([fo.Dense(4, activation="relu", input_shape=(3,)), fo.Dense(1)],
                          dtype="float64", seed=5)
    initial = model.get_weights()
    model.compile("adam", "mse")
    model.fit(np.random.default_rng(0).standard_normal((16, 3)), np.ones(16), epochs=3, verbose=0)
    clone = fo.clone_model(model)
    assert clone is not model and clone.optimizer is None
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    assert clone.get_config() == model.get_config()
    assert weights_equal(clone.get_weights(), initial)  # seeded: the weights the model started from
    assert not weights_equal(clone.get_weights(), model.get_weights())
    # changing the clone leaves the model alone
    before = model.get_weights()
    clone.layers[0].set_weights([np.zeros((3, 4)), np.zeros(4)])
    assert weights_equal(model.get_weights(), before)
    # unseeded: other weights
    free = fo.Sequential([fo.Dense(4, input_shape=(3,))])
    assert not weights_equal(fo.clone_model(free).get_weights(), free.get_weights())
    # Input kept, lazy model stays lazy, a clone_function makes each layer
    assert fo.clone_model(model_13()).get_config() == model_13().get_config()
    assert not fo.clone_model(fo.Sequential([fo.Dense(2)])).built
    wider = fo.clone_model(model, clone_function=lambda l: fo.Dense(l.units * 2, activation=l.activation))
    assert [l.units for l in wider.layers] == [8, 2]
    with pytest.raises(TypeError, match="Sequential"):
        fo.clone_model("model")


# -- construction mistakes --------------------------------------------------------------------

def test_single_layer_instead_of_a_list():
    with pytest.raises(TypeError, match=r"list of layers.*Sequential\(\[Dense"):
        fo.Sequential(fo.Dense(1, input_shape=(2,)))
    with pytest.raises(TypeError, match="list of layers"):
        fo.Sequential("dense")
    with pytest.raises(TypeError, match="list of layers"):
        fo.Sequential(3)
    assert fo.Sequential((fo.Dense(2, input_shape=(3,)), fo.Dense(1))).built  # any sequence works


@pytest.mark.parametrize("make, words", [
    (lambda: fo.Dense(10, activaton="relu"), ["Dense()", "'activaton'", "did you mean 'activation'"]),
    (lambda: fo.Dense(10, kernel_initialiser="zeros"), ["did you mean 'kernel_initializer'"]),
    (lambda: fo.Dense(10, inputshape=(3,)), ["did you mean 'input_shape'"]),
    (lambda: fo.Dense(10, bias_regularizer="l2"), ["'bias_regularizer'", "Keras argument", "not support"]),
    (lambda: fo.Dense(10, colour="red"), ["'colour'", "accepts", "units"]),
    (lambda: fo.Sequential([], nmae="x"), ["Sequential()", "did you mean 'name'"]),
    (lambda: fo.Sequential([], trainable=False), ["'trainable'", "Keras argument"]),
    (lambda: fo.Sequential([fo.Dense(1)]).compile("sgd", "mse", metric=["mae"]),
     ["compile()", "did you mean 'metrics'"]),
    (lambda: fo.Sequential([fo.Dense(1)]).compile(optimiser="sgd"), ["did you mean 'optimizer'"]),
    (lambda: fo.Sequential([fo.Dense(1)]).compile("sgd", "mse", run_eagerly=True), ["Keras argument"]),
    (lambda: fo.Input(shpe=(3,)), ["Input()", "did you mean 'shape'"]),
])
def test_unknown_keywords_name_the_keras_one(make, words):
    with pytest.raises(TypeError) as info:
        make()
    for w in words:
        assert w in str(info.value), str(info.value)


def test_keyword_checks_keep_signatures_and_positional_calls():
    import inspect

    assert "activation" in inspect.signature(fo.Dense).parameters
    assert "metrics" in inspect.signature(fo.Sequential.compile).parameters
    d = fo.Dense(3, "relu", False)
    assert d.activation == "relu" and d.use_bias is False


def test_summary_and_save_with_an_input(tmp_path):
    model = model_13()
    lines = []
    model.summary(print_fn=lines.append)
    assert any("dense (Dense)" in l for l in lines) and any("151" in l for l in lines)
    model.compile("sgd", "mse")
    model.save(tmp_path / "m.npz")
    again = fo.load_model(tmp_path / "m.npz")
    assert weights_equal(again.get_weights(), model.get_weights())
    assert again.layers[0].input_shape == (None, 13)
