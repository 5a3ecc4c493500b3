"""``python -m retrainer.serving``: the model server over the model store (``retrainer.serving.rest``)."""

from retrainer.serving.rest import main

if __name__ == "__main__":
    main()
