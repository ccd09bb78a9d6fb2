//! Containers: isolated process groups made of namespaces, cgroups and a
//! changed root, each watched by a small monitor process that outlives the
//! `kcnode` that started it.
