//! Whether one frame's buffers fit in a render task's memory, judged from the scene's
//! resolution and view layers before any compute.
//!
//! The estimate is a floor built from the buffers Blender and Cycles allocate for every pixel of
//! every view layer, whatever the scene holds: the render result's Combined pass (4 float32,
//! 16 bytes), Cycles' film buffer for it with its sample count and adaptive-sampling data (at
//! least 6 float32, 24 bytes) and the denoising albedo and normal passes (6 float32, 24 bytes,
//! on by default): [`BYTES_PER_PIXEL_PER_LAYER`] = 64. Samples do not change it (Cycles
//! accumulates every sample into the same film), they change the time, which the per-frame
//! time limit bounds. Textures, geometry, BVH and more passes come on top, so a scene refused by
//! this floor can never render in a task's memory; one it accepts may still run out.

/// Bytes every pixel of every view layer takes at least (see the module's text).
pub const BYTES_PER_PIXEL_PER_LAYER: u64 = 64;

/// The memory of a render task: 4 vCPU and 8 GiB on Fargate (infra/farm.yaml's render job
/// definitions).
pub const RENDER_TASK_MEMORY: u64 = 8 << 30;

/// The pixels Blender renders for a resolution at a percentage (`size` 100 is full size).
pub fn pixels(resolution: [i32; 2], percentage: i32) -> u64 {
    let side =
        |v: i32| u64::try_from(v).unwrap_or(0) * u64::try_from(percentage).unwrap_or(0) / 100;
    side(resolution[0]) * side(resolution[1])
}

/// Why a frame of `resolution` at `percentage` with `layers` rendered view layers (at least 1)
/// cannot fit in [`RENDER_TASK_MEMORY`], naming memory and what to change; `None` when its
/// buffers fit.
pub fn too_large(
    scene: &str,
    resolution: [i32; 2],
    percentage: i32,
    layers: usize,
) -> Option<String> {
    let layers = u64::try_from(layers.max(1)).unwrap_or(u64::MAX);
    let bytes = pixels(resolution, percentage)
        .saturating_mul(layers)
        .saturating_mul(BYTES_PER_PIXEL_PER_LAYER);
    (bytes > RENDER_TASK_MEMORY).then(|| {
        format!(
            "scene `{scene}` renders {} x {} pixels at {percentage} % with {layers} view layer(s): its frame buffers alone need at least {:.1} GiB of memory ({BYTES_PER_PIXEL_PER_LAYER} bytes a pixel per view layer), more than the {} GiB memory of a render task; lower the resolution or its percentage (Output Properties > Format) or render fewer view layers, and save the file",
            resolution[0],
            resolution[1],
            bytes as f64 / f64::from(1u32 << 30),
            RENDER_TASK_MEMORY >> 30
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_past_a_tasks_memory_are_refused_naming_memory() {
        assert_eq!(too_large("s", [3840, 2160], 100, 1), None);
        assert_eq!(too_large("s", [11_000, 11_000], 100, 1), None);
        assert_eq!(too_large("s", [0, 0], 100, 0), None);
        let message = too_large("Shot", [65_535, 65_535], 100, 1).unwrap();
        for needle in [
            "`Shot`",
            "65535 x 65535",
            "256.0 GiB of memory",
            "8 GiB memory of a render task",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
        // The percentage and the view layers count.
        assert_eq!(too_large("s", [65_535, 65_535], 10, 1), None);
        assert!(too_large("s", [8192, 8192], 100, 3).is_some());
        assert_eq!(too_large("s", [8192, 8192], 100, 1), None);
        assert_eq!(too_large("s", [-5, 10], 100, 1), None);
    }
}
