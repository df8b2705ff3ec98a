// Python bindings for the three mmcv CPU ops the official RTMDet test paths call: nms (mmdet's
// batched_nms), nms_rotated and box_iou_rotated (mmrotate). mmcv-lite ships the C++ sources but
// no compiled `_ext`; tests/reference/oracle_env.py compiles those sources together with this
// file and registers the result as `mmcv._ext`, so the official code runs its own NMS.
// The signatures and argument names are the ones mmcv's `_ext` module exposes.
#include <torch/extension.h>

using at::Tensor;

Tensor nms(Tensor boxes, Tensor scores, float iou_threshold, int offset);
Tensor nms_rotated(const Tensor dets, const Tensor scores, const Tensor order,
                   const Tensor dets_sorted, const Tensor labels,
                   const float iou_threshold, const int multi_label);
void box_iou_rotated(const Tensor boxes1, const Tensor boxes2, Tensor ious,
                     const int mode_flag, const bool aligned);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nms", &nms, "nms (CPU)", py::arg("boxes"), py::arg("scores"),
        py::arg("iou_threshold"), py::arg("offset"));
  m.def("nms_rotated", &nms_rotated, "NMS for rotated boxes (CPU)", py::arg("dets"),
        py::arg("scores"), py::arg("order"), py::arg("dets_sorted"), py::arg("labels"),
        py::arg("iou_threshold"), py::arg("multi_label"));
  m.def("box_iou_rotated", &box_iou_rotated, "IoU for rotated boxes (CPU)",
        py::arg("boxes1"), py::arg("boxes2"), py::arg("ious"), py::arg("mode_flag"),
        py::arg("aligned"));
}
