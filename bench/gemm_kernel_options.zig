//! Build options for bench/gemm_kernel.zig (engine/gemm.zig compiled directly, no dispatch).
pub const dispatch = false;
pub const kernel_object = false;
pub const level = "";
