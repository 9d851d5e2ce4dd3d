#!/usr/bin/env python3
"""F1 against prevalence, from an evaluation folder (`reconad eval --out DIR`).

Reads DIR/scores.csv and DIR/metrics.json and prints, at the calibrated threshold, the true- and
false-positive rates on the test set, then the F1 the same detector would have if anomalies made
up a share p of the images (precision = TPR·p / (TPR·p + FPR·(1 − p)); TPR and FPR do not depend
on p). Also the F1-max over all thresholds on the test set (an oracle) and the image AUROC, which
do not change with p. Standard library only.

    python3 scripts/f1_prevalence.py DIR [DIR ...]
"""

import csv
import json
import sys


def rates(rows, threshold):
    pos = [r for r in rows if r["label"] == "1"]
    neg = [r for r in rows if r["label"] == "0"]
    tpr = sum(float(r["score"]) >= threshold for r in pos) / len(pos)
    fpr = sum(float(r["score"]) >= threshold for r in neg) / len(neg)
    return tpr, fpr, len(pos), len(neg)


def f1_at_prevalence(tpr, fpr, p):
    tp, fp = tpr * p, fpr * (1 - p)
    if tp == 0:
        return 0.0
    precision = tp / (tp + fp)
    return 2 * precision * tpr / (precision + tpr)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("category      n+/n-   TPR    FPR   F1@thr(test)  F1-max  F1@thr p=0.5  p=0.1  p=0.01  AUROC")
    for d in sys.argv[1:]:
        with open(f"{d}/metrics.json") as f:
            m = json.load(f)
        with open(f"{d}/scores.csv") as f:
            rows = list(csv.DictReader(f))
        t = m["threshold"]
        tpr, fpr, npos, nneg = rates(rows, t)
        f1_max = m["f1_max"]["f1"] if m.get("f1_max") else float("nan")
        cells = [f1_at_prevalence(tpr, fpr, p) for p in (0.5, 0.1, 0.01)]
        print(
            f"{m['dataset']:<12} {npos:>3}/{nneg:<3} {tpr:.3f}  {fpr:.3f}  {m['at_threshold']['f1']:.4f}"
            f"        {f1_max:.4f}  {cells[0]:.4f}      {cells[1]:.4f} {cells[2]:.4f}  {m['image_auroc']:.4f}"
        )


if __name__ == "__main__":
    main()
