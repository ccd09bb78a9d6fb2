pub mod https;
pub mod router;
