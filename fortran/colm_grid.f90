! Vertical grid of the column: CoLM soil node depths and the snow layers above the soil (the one place
! where node depths and interfaces are derived from layer thicknesses).
module colm_grid
  use colm_const, only: r8, nl_soil, maxsnl
  implicit none
  private
  public :: colm_soil_thickness, soil_geometry, snow_geometry, snow_layer_geometry, count_snow_layers
contains
  ! CoLM's default soil layers: node z_j = 0.025 (exp(0.5 (j - 0.5)) - 1) m; thickness from node midpoints.
  pure subroutine colm_soil_thickness(dz)
    real(r8), intent(out) :: dz(nl_soil)       ! layer thickness (m)
    real(r8) :: z(nl_soil)                     ! node depth (m)
    integer :: j
    do j = 1, nl_soil
      z(j) = 0.025_r8 * (exp(0.5_r8 * (real(j, r8) - 0.5_r8)) - 1.0_r8)
    end do
    dz(1) = 0.5_r8 * (z(1) + z(2))
    do j = 2, nl_soil - 1
      dz(j) = 0.5_r8 * (z(j+1) - z(j-1))
    end do
    dz(nl_soil) = z(nl_soil) - z(nl_soil-1)
  end subroutine colm_soil_thickness

  ! Node depths and interfaces of the soil layers from their thicknesses (node at the layer centre).
  pure subroutine soil_geometry(dz_soil, z, zi)
    real(r8), intent(in) :: dz_soil(nl_soil)   ! soil layer thickness (m)
    real(r8), intent(out) :: z(nl_soil)        ! node depth (m)
    real(r8), intent(out) :: zi(0:nl_soil)     ! interface depth, zi(0) = 0 at the surface (m)
    integer :: j
    zi(0) = 0.0_r8
    do j = 1, nl_soil
      zi(j) = zi(j-1) + dz_soil(j)
      z(j) = zi(j-1) + 0.5_r8 * dz_soil(j)
    end do
  end subroutine soil_geometry

  ! Number of snow layers (as CoLM's snl <= 0) from the snow thickness array; layers fill from 0 upward.
  pure integer function count_snow_layers(dz_snow) result(snl)
    real(r8), intent(in) :: dz_snow(maxsnl+1:0)  ! snow layer thickness, 0 where no layer (m)
    integer :: j
    snl = 0
    do j = 0, maxsnl + 1, -1
      if (dz_snow(j) > 0.0_r8) then
        snl = j - 1
      else
        exit
      end if
    end do
  end function count_snow_layers

  ! Full snow+soil geometry (CoLM convention): snow interfaces negative above the soil surface.
  pure subroutine snow_geometry(snl, dz_soil, dz, z, zi)
    integer, intent(in) :: snl                      ! minus the number of snow layers (-)
    real(r8), intent(in) :: dz_soil(nl_soil)        ! soil layer thickness (m)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil) ! layer thickness; snow part read, soil part written (m)
    real(r8), intent(out) :: z(maxsnl+1:nl_soil)    ! node depth (m)
    real(r8), intent(out) :: zi(maxsnl:nl_soil)     ! interface depth (m)
    dz(1:nl_soil) = dz_soil
    call soil_geometry(dz_soil, z(1:nl_soil), zi(0:nl_soil))
    call snow_layer_geometry(snl, dz, z, zi)
  end subroutine snow_geometry

  ! Node depths and interfaces of the snow layers from their thicknesses (zi(0) = 0 at the soil surface,
  ! negative upward); empty slots above snl+1 get zero dz, z and zi. The soil part is not touched. Used by
  ! snow_geometry and by colm_snow after every change of the snow layers.
  pure subroutine snow_layer_geometry(snl, dz, z, zi)
    integer, intent(in) :: snl                         ! minus the number of snow layers (-)
    real(r8), intent(inout) :: dz(maxsnl+1:nl_soil)    ! layer thickness; empty snow slots set to 0 (m)
    real(r8), intent(inout) :: z(maxsnl+1:nl_soil)     ! node depth (m)
    real(r8), intent(inout) :: zi(maxsnl:nl_soil)      ! interface depth (m)
    integer :: j
    zi(0) = 0.0_r8
    do j = 0, snl + 1, -1
      zi(j-1) = zi(j) - dz(j)
      z(j) = zi(j) - 0.5_r8 * dz(j)
    end do
    do j = snl, maxsnl + 1, -1
      dz(j) = 0.0_r8
      z(j) = 0.0_r8
      zi(j-1) = 0.0_r8
    end do
  end subroutine snow_layer_geometry
end module colm_grid
