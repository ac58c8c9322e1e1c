"""Write the toy COCO (instances, panoptic) and ADE20K-format datasets of the tests and demos.

Usage: python tools/make_toy_data.py [--out data] [--force]
"""

import argparse

from mmrmt.toy_data import make_toy_ade, make_toy_coco, make_toy_coco_panoptic


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="data", help="folder for toy_coco/ and toy_ade/")
    parser.add_argument("--force", action="store_true", help="rewrite even if present")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    print(make_toy_coco(f"{args.out}/toy_coco", force=args.force))
    print(make_toy_coco_panoptic(f"{args.out}/toy_coco"))
    print(make_toy_ade(f"{args.out}/toy_ade", force=args.force))


if __name__ == "__main__":
    main()
