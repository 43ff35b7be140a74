"""Image IO (SimpleITK), raw dataset layouts (MSD, Task (v1), Dataset (v2)), conversion and verification."""
