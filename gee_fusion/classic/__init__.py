"""Classic classifiers compared with the deep models: the in-cloud Random Forest (Earth Engine's
``smileRandomForest``, trained and assessed on the server) and scikit-learn baselines, on the
same server-drawn samples and held-out spatial blocks."""
