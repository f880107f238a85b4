//! The StatefulSet controller core.
