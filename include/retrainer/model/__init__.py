"""Models: training with Keras and tf.data, evaluation and the gate, drift, and the reports people look at."""
