# This repository's Justfile: in a host repository, the host's own, with its own
# recipes and settings. The xtask adds one marked line (docs/adding-the-xtask.md).

# List the recipes.
default:
    @just --list

# ---- added by the hyperlight xtask (docs/adding-the-xtask.md) ----------------
import 'xtask/xtask.just'
