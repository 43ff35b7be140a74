"""segforge-dicom: DICOM series folders as segforge cases, and DICOM-SEG output (pydicom, highdicom).

Installing the package registers the ``dicom`` image IO (a folder holding one series is one
image), so ``segforge predict -i IN`` predicts every series sub-folder of ``IN``, and adds the
``segforge dicom`` command group (list series, convert to NIfTI, write DICOM-SEG, predict).
"""

__version__ = "0.1.0"
